//! The mock upstream of `signet bench`: a bare hyper HTTP/1 server answering
//! `*/chat/completions` (OpenAI) and `*/messages` (Anthropic) at once — a
//! canned unary answer, or (with `"stream": true`) an SSE stream of N text
//! deltas of S content bytes, P µs apart, in that API's events — and
//! `*/models`. Cheap on purpose: the request body is searched for a few keys,
//! never parsed, and the canned answers are built once.
//!
//! Per-request overrides ride in the JSON body (gates forward unknown fields):
//! `bench_chunks`, `bench_size`, `bench_pace_us`, and `bench_offend_at: K`,
//! which puts the marking `SECRET//NOFORN` in chunk K — the default pipeline's
//! `scope_drift` check (caller clearance UNCLASS) must abort the stream there.
//! With `bench_id`, the instant that chunk is handed to the socket is kept so
//! the load generator can time the abort.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::load::Api;

/// The marking an offending chunk carries.
pub const OFFENDING_MARKER: &str = "SECRET//NOFORN";

/// Stream shape used when a request does not override it.
#[derive(Clone, Copy, Debug)]
pub struct StreamShape {
    /// Content chunks per stream (before the final `finish_reason` chunk).
    pub chunks: usize,
    /// Content bytes per chunk (at least 8: each starts with its tag `cNNNNNN `).
    pub size: usize,
    /// Pause before each chunk after the first, in microseconds.
    pub pace_us: u64,
}

/// When each tagged request's offending chunk was handed to the socket.
pub type OffendTimes = Arc<Mutex<HashMap<u64, Instant>>>;

struct State {
    shape: StreamShape,
    unary: Bytes,
    unary_anthropic: Bytes,
    models: Bytes,
    offend_times: OffendTimes,
}

/// A running mock.
pub struct Mock {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Offending-chunk send instants by `bench_id`.
    pub offend_times: OffendTimes,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const FILLER: &str = "the quarterly numbers look steady and the onboarding flow shipped on time; ";

/// The canned unary completion.
fn unary_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Revenue is up 4%, churn is flat, and the new onboarding flow shipped on Tuesday. Nothing needs a decision before Friday."}}],
            "usage": {"prompt_tokens": 60, "completion_tokens": 30, "total_tokens": 90}
        })
        .to_string(),
    )
}

/// The canned unary Anthropic message.
fn unary_anthropic_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "text", "text": "Revenue is up 4%, churn is flat, and the new onboarding flow shipped on Tuesday. Nothing needs a decision before Friday."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 60, "output_tokens": 30}
        })
        .to_string(),
    )
}

/// One Anthropic SSE event.
fn anthropic_event(kind: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// The Anthropic events before the first text delta.
fn anthropic_opening() -> Bytes {
    let start = anthropic_event(
        "message_start",
        &serde_json::json!({"type": "message_start", "message": {"id": "msg_bench", "type": "message",
            "role": "assistant", "model": "bench", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 60, "output_tokens": 0}}}),
    );
    let block = anthropic_event(
        "content_block_start",
        &serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    Bytes::from([start, block].concat())
}

/// The Anthropic events after the last text delta.
fn anthropic_closing() -> Bytes {
    Bytes::from(
        [
            anthropic_event(
                "content_block_stop",
                &serde_json::json!({"type": "content_block_stop", "index": 0}),
            ),
            anthropic_event(
                "message_delta",
                &serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
            ),
            anthropic_event("message_stop", &serde_json::json!({"type": "message_stop"})),
        ]
        .concat(),
    )
}

/// Text delta `text` in `api`'s events.
fn delta_event(api: Api, text: &str) -> Bytes {
    match api {
        Api::OpenAi => chunk_event(text, false),
        Api::Anthropic => anthropic_event(
            "content_block_delta",
            &serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
    }
}

/// The content of chunk `i` (1-based): its tag, the marker if it offends,
/// filler up to `size` bytes.
fn content(i: usize, size: usize, offends: bool) -> String {
    let mut s = format!("c{i:06} ");
    if offends {
        s.push_str(OFFENDING_MARKER);
        s.push(' ');
    }
    while s.len() < size {
        let need = size - s.len();
        s.push_str(FILLER.get(..need.min(FILLER.len())).unwrap_or(FILLER));
    }
    s
}

fn chunk_event(content: &str, finish: bool) -> Bytes {
    let v = if finish {
        serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    } else {
        serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    };
    Bytes::from(format!("data: {v}\n\n"))
}

/// The integer after `"key":` in a JSON body, if any (no full parse).
fn int_field(body: &[u8], key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let at = body.windows(pat.len()).position(|w| w == pat.as_bytes())?;
    let rest = body.get(at + pat.len()..)?;
    let digits: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    digits.parse().ok()
}

fn wants_stream(body: &[u8]) -> bool {
    let has = |p: &[u8]| body.windows(p.len()).any(|w| w == p);
    has(b"\"stream\":true") || has(b"\"stream\": true")
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn respond(status: u16, ctype: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r
}

fn full(b: Bytes) -> Body {
    Full::new(b).boxed_unsync()
}

fn stream(st: &State, api: Api, body: &[u8]) -> Body {
    let pick = |k: &str, d: u64| int_field(body, k).unwrap_or(d);
    let chunks = usize::try_from(pick("bench_chunks", st.shape.chunks as u64)).unwrap_or(1);
    let size = usize::try_from(pick("bench_size", st.shape.size as u64)).unwrap_or(8);
    let pace = Duration::from_micros(pick("bench_pace_us", st.shape.pace_us));
    let offend_at = int_field(body, "bench_offend_at").and_then(|k| usize::try_from(k).ok());
    let id = int_field(body, "bench_id");
    let times = st.offend_times.clone();
    // Event 0 opens an Anthropic message; 1..=chunks carry the text; then
    // the end (OpenAI: the finish_reason chunk, then [DONE]).
    let (first, last) = match api {
        Api::OpenAi => (1, chunks + 2),
        Api::Anthropic => (0, chunks + 1),
    };
    let events = futures_util::stream::unfold(first, move |i| {
        let times = times.clone();
        async move {
            if i > last {
                return None;
            }
            if i > 1 && !pace.is_zero() && i <= chunks + 1 {
                tokio::time::sleep(pace).await;
            }
            let frame = if i == 0 {
                anthropic_opening()
            } else if i <= chunks {
                let offends = offend_at == Some(i);
                let ev = delta_event(api, &content(i, size, offends));
                if let (true, Some(id)) = (offends, id) {
                    if let Ok(mut t) = times.lock() {
                        t.insert(id, Instant::now());
                    }
                }
                ev
            } else if i == chunks + 1 {
                match api {
                    Api::OpenAi => chunk_event("", true),
                    Api::Anthropic => anthropic_closing(),
                }
            } else {
                Bytes::from_static(b"data: [DONE]\n\n")
            };
            Some((Ok::<_, Infallible>(Frame::data(frame)), i + 1))
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(events))
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if path.ends_with("/models") {
        return Ok(respond(200, "application/json", full(st.models.clone())));
    }
    let Some(api) = Api::of_path(&path) else {
        return Ok(respond(
            404,
            "application/json",
            full(Bytes::from_static(b"{\"error\":\"not found\"}")),
        ));
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(
                400,
                "application/json",
                full(Bytes::from_static(b"{}")),
            ))
        }
    };
    if wants_stream(&body) {
        return Ok(respond(200, "text/event-stream", stream(&st, api, &body)));
    }
    let unary = match api {
        Api::OpenAi => st.unary.clone(),
        Api::Anthropic => st.unary_anthropic.clone(),
    };
    Ok(respond(200, "application/json", full(unary)))
}

/// Start the mock on 127.0.0.1:`port` (0 = any) on the current runtime.
pub async fn start(port: u16, shape: StreamShape) -> anyhow::Result<Mock> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding the mock upstream to port {port}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let offend_times: OffendTimes = Arc::default();
    let st = Arc::new(State {
        shape: StreamShape {
            size: shape.size.max(8),
            chunks: shape.chunks.max(1),
            ..shape
        },
        unary: unary_body(),
        unary_anthropic: unary_anthropic_body(),
        models: Bytes::from_static(b"{\"object\":\"list\",\"data\":[{\"id\":\"bench\",\"object\":\"model\",\"owned_by\":\"signet-bench\"}]}"),
        offend_times: offend_times.clone(),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            let st = st.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Ok(Mock {
        url,
        offend_times,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_content() {
        let b = br#"{"bench_id": 42,"stream":true,"bench_offend_at":3}"#;
        assert_eq!(int_field(b, "bench_id"), Some(42));
        assert_eq!(int_field(b, "bench_offend_at"), Some(3));
        assert_eq!(int_field(b, "bench_chunks"), None);
        assert!(wants_stream(b));
        assert_eq!(content(7, 50, false).len(), 50);
        assert!(content(7, 50, true).starts_with("c000007 SECRET//NOFORN"));
        assert_eq!(content(1, 300, false).len(), 300);
    }

    /// The SSE events of a stream body: (event name or "", parsed data).
    fn events(body: &[u8]) -> Vec<(String, serde_json::Value)> {
        let text = String::from_utf8_lossy(body);
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let name = e
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("");
                let data = e
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("");
                let v = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
                (name.to_string(), v)
            })
            .collect()
    }

    async fn fetch(url: &str, api: Api, body: &str) -> Bytes {
        let t = super::super::load::Target::parse(url).unwrap();
        let mut c = super::super::load::Conn::open(&t).await.unwrap();
        let w = super::super::load::Workload {
            api,
            body: Bytes::from(body.to_string()),
            offend_at: None,
        };
        let seen = c.send(&t, &w).await.unwrap();
        assert_eq!(seen.status, 200);
        // Fetch again with a plain client to get the bytes themselves (and
        // check the load generator counted them all).
        let s = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(api.path())
            .header(hyper::header::HOST, "mock")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = tx.send_request(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), seen.bytes);
        bytes
    }

    #[tokio::test]
    async fn anthropic_streams_and_messages_follow_the_messages_api() {
        let shape = StreamShape {
            chunks: 20,
            size: 50,
            pace_us: 0,
        };
        let m = start(0, shape).await.unwrap();
        let body = fetch(
            &m.url,
            Api::Anthropic,
            r#"{"stream":true,"bench_chunks":3,"bench_size":40,"messages":[]}"#,
        )
        .await;
        let ev = events(&body);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, v) in &ev {
            assert_eq!(v["type"], name.as_str(), "the data's type names its event");
        }
        let texts: Vec<&str> = ev
            .iter()
            .filter_map(|(_, v)| v.pointer("/delta/text").and_then(|t| t.as_str()))
            .collect();
        assert_eq!(texts.len(), 3);
        assert!(texts.iter().all(|t| t.len() == 40), "{texts:?}");
        assert!(texts[2].starts_with("c000003 "));
        // Unary: one message with a text block.
        let unary = fetch(&m.url, Api::Anthropic, r#"{"messages":[]}"#).await;
        let v: serde_json::Value = serde_json::from_slice(&unary).unwrap();
        assert_eq!(v["type"], "message");
        assert!(v
            .pointer("/content/0/text")
            .and_then(|t| t.as_str())
            .is_some());
        // OpenAI streams are unchanged: N deltas, the finish chunk, [DONE].
        let oa = fetch(
            &m.url,
            Api::OpenAi,
            r#"{"stream":true,"bench_chunks":2,"messages":[]}"#,
        )
        .await;
        let ev = events(&oa);
        assert_eq!(ev.len(), 4);
        assert!(ev.iter().all(|(n, _)| n.is_empty()));
        assert_eq!(
            ev[2].1.pointer("/choices/0/finish_reason"),
            Some(&"stop".into())
        );
        assert!(String::from_utf8_lossy(&oa).ends_with("data: [DONE]\n\n"));
    }
}
