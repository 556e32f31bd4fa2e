//! A bare forwarder, for the floor under the gate's added latency
//! (`signet bench proxy`, the bench's `floor` scenario): the gate's own
//! listener ([`super::listen`]), axum router and upstream client, and nothing
//! else — no pipeline, no audit, no receipts, no parsing. What it adds over
//! calling the upstream directly is what a hop through these HTTP stacks costs
//! on the machine at hand (two more sockets, and on a pinned setup the
//! wake-ups across CPUs) before any check runs. It is not a gate: it forwards
//! every request as it came, and `signet serve` never uses it.
use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::BytesMut;

use super::listen;
use super::stream::{ready_soon, FLUSH_BYTES};
use crate::upstream::{Incoming, Upstream, UpstreamError};

/// Largest request body forwarded (the gate's default cap).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Every path and method goes to the upstream.
pub fn router(up: Upstream) -> Router {
    Router::new().fallback(forward).with_state(Arc::new(up))
}

/// Serve [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    up: Upstream,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let open =
        listen::accept_until(router(up), listener, shutdown, listen::HEADER_READ_TIMEOUT).await;
    let _ = open.drained(std::time::Duration::from_secs(1)).await;
}

async fn forward(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("request body: {e}")).into_response(),
    };
    let body = (!body.is_empty()).then_some(body);
    let incoming = match up.send(&method, &path, &[], body).await {
        Ok(i) => i,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(incoming.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = HeaderValue::from_str(&incoming.content_type).ok();
    let mut resp = if incoming.streaming {
        // What came in together leaves together, as on the gate's stream
        // path. The reading is a task of its own: polled from inside the
        // caller connection's body, the yield in `ready_soon` did not let
        // the upstream connection decode what it held (one write per event).
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, UpstreamError>>(32);
        tokio::spawn(async move {
            let mut inc = incoming;
            loop {
                let next = ready_chunks(&mut inc).await.transpose();
                let last = !matches!(next, Some(Ok(_)));
                if let Some(item) = next {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                if last {
                    return;
                }
            }
        });
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Body::from_stream(chunks).into_response()
    } else {
        match incoming.bytes().await {
            Ok(b) => Body::from(b).into_response(),
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    };
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut().insert("content-type", ct);
    }
    resp
}

/// The next chunk and every chunk ready right behind it ([`ready_soon`]), up
/// to the gate's flush size: one socket write for what came in one read.
async fn ready_chunks(inc: &mut Incoming) -> Result<Option<Bytes>, UpstreamError> {
    let Some(first) = inc.chunk().await? else {
        return Ok(None);
    };
    let mut out = BytesMut::new();
    loop {
        let mut next = std::pin::pin!(inc.chunk());
        match ready_soon(&mut next).await {
            Some(Ok(Some(b))) => {
                if out.is_empty() {
                    out.extend_from_slice(&first);
                }
                out.extend_from_slice(&b);
                if out.len() >= FLUSH_BYTES {
                    break;
                }
            }
            Some(Err(e)) => return Err(e),
            // The end (the next call sees it again) or nothing ready yet.
            Some(Ok(None)) | None => break,
        }
    }
    Ok(Some(if out.is_empty() { first } else { out.freeze() }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::routing::post;
    use std::time::Duration;

    /// An upstream that echoes what it got: unary JSON, or (path `/sse`) two SSE events.
    async fn upstream() -> String {
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|body: Bytes| async move {
                    (
                        [("content-type", "application/json")],
                        format!("{{\"echo\":{}}}", String::from_utf8_lossy(&body)),
                    )
                }),
            )
            .route(
                "/sse",
                post(|| async {
                    let events = futures_util::stream::iter(["data: a\n\n", "data: [DONE]\n\n"])
                        .map(|s| Ok::<Bytes, std::convert::Infallible>(Bytes::from(s)));
                    (
                        [("content-type", "text/event-stream")],
                        Body::from_stream(events),
                    )
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        url
    }

    use futures_util::StreamExt as _;

    #[tokio::test]
    async fn forwards_unary_and_streamed_answers_with_their_status_and_type() {
        let up = Upstream::new(&upstream().await, "t", None, Duration::from_secs(5)).unwrap();
        let l = crate::server::bind_nodelay("127.0.0.1", 0).await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(serve(up, l, std::future::pending()));
        let client = Upstream::new(&base, "c", None, Duration::from_secs(5)).unwrap();
        let body = Bytes::from_static(b"{\"x\":1}");
        let r = client
            .send_exact("POST", "/v1/chat/completions", &[], Some(body))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, "application/json")
        );
        assert_eq!(&r.bytes().await.unwrap()[..], b"{\"echo\":{\"x\":1}}");
        let r = client.send_exact("POST", "/sse", &[], None).await.unwrap();
        assert!(r.streaming);
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            b"data: a\n\ndata: [DONE]\n\n"
        );
        // An unknown path is the upstream's 404, passed on.
        let r = client.send_exact("GET", "/nope", &[], None).await.unwrap();
        assert_eq!(r.status, 404);
    }
}
