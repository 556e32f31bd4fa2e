//! The plain-HTTP transport: HTTP/1.1 straight on hyper's connection API with
//! a small pool of kept-alive connections, for `http://` upstreams (a local
//! model server, the demo upstream, the bench mock) when no proxy is set in
//! the environment. Everything else (TLS, proxies, credentials in the URL)
//! goes through reqwest.
//!
//! Why: on the gate's hot path reqwest's own layers (request builder, URL to
//! URI conversion, redirect and retry wrappers, the pool's keyed checkout)
//! cost more CPU per request than the HTTP/1 exchange itself; this transport
//! keeps only the exchange. A connection goes back to the pool only once its
//! response body has been read to the end, so a pooled connection is always
//! free for the next request; a request that a pooled connection could not
//! take (closed by the server while idle) is retried once on a fresh one.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Idle connections kept at most, and for at most how long.
const MAX_IDLE: usize = 256;
const IDLE_FOR: Duration = Duration::from_secs(90);

/// Environment variables that route plain-HTTP traffic through a proxy;
/// when one is set the upstream goes through reqwest, which honours them.
const PROXY_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

type Sender = SendRequest<Full<Bytes>>;

struct Idle {
    tx: Sender,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    /// The most recently used live connection, dropping stale ones.
    fn checkout(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Oldest first: drop the expired ones from the front.
        let expired = idle
            .iter()
            .take_while(|i| i.since.elapsed() >= IDLE_FOR)
            .count();
        idle.drain(..expired);
        while let Some(i) = idle.pop() {
            if !i.tx.is_closed() {
                return Some(i.tx);
            }
        }
        None
    }

    fn checkin(&self, tx: Sender) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                tx,
                since: Instant::now(),
            });
        }
    }
}

/// A plain-HTTP upstream origin.
pub(super) struct Lean {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header (the authority as configured).
    host: String,
    /// Path prefix of the base URL ("" or e.g. "/proxy").
    prefix: String,
    pool: Arc<Pool>,
    connect_timeout: Duration,
}

/// Why an exchange failed before a response head arrived (no connection,
/// no handshake, or the exchange broke off), with its cause chain.
#[derive(Debug)]
pub(super) struct LeanError(pub(super) String);

impl Lean {
    /// The transport for `base` (already without a trailing `/` or `/v1`),
    /// or `None` when reqwest must carry it: not `http://`, credentials in
    /// the URL, an unparsable URL, or a proxy set in the environment.
    pub(super) fn for_base(base: &str, connect_timeout: Duration) -> Option<Lean> {
        if PROXY_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        {
            return None;
        }
        let rest = base.strip_prefix("http://")?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || prefix.contains(['?', '#']) {
            return None;
        }
        let uri: hyper::Uri = format!("http://{authority}/").parse().ok()?;
        let host = uri.host()?;
        let port = uri.port_u16().unwrap_or(80);
        Some(Lean {
            addr: format!("{host}:{port}"),
            host: authority.to_string(),
            prefix: prefix.to_string(),
            pool: Arc::new(Pool::default()),
            connect_timeout,
        })
    }

    /// A request for `path_and_query` with this origin's `Host` and prefix.
    pub(super) fn request(
        &self,
        method: &str,
        path_and_query: &str,
    ) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.prefix))
            .header(hyper::header::HOST, self.host.as_str())
    }

    async fn connect(&self) -> Result<Sender, LeanError> {
        let err =
            |what: &str, e: &dyn std::fmt::Display| LeanError(format!("{what} {}: {e}", self.addr));
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(self.addr.as_str()),
        )
        .await
        .map_err(|_| {
            let ms = self.connect_timeout.as_millis();
            LeanError(format!(
                "connect to {}: no answer within {ms} ms",
                self.addr
            ))
        })?
        .map_err(|e| err("connect to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| err("set TCP_NODELAY on", &e))?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| err("HTTP/1 handshake with", &e))?;
        // The connection task ends when the server closes the connection or
        // the last sender for it is dropped.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(tx)
    }

    /// Send `req`: on a pooled connection when one is free, else on a new
    /// one. The response's body must be read through [`LeanBody`], which
    /// returns the connection to the pool at its end.
    pub(super) async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(Response<hyper::body::Incoming>, Lease), LeanError> {
        let mut req = req;
        loop {
            let (mut tx, pooled) = match self.pool.checkout() {
                Some(tx) => (tx, true),
                None => (self.connect().await?, false),
            };
            if let Err(e) = tx.ready().await {
                if pooled {
                    continue;
                }
                return Err(LeanError(super::error_chain(&e)));
            }
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        tx: Some(tx),
                        pool: Arc::clone(&self.pool),
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: a pooled connection the server had
                    // closed. Try the next one (or a new one).
                    Some(back) if pooled => req = back,
                    _ => return Err(LeanError(super::error_chain(e.error()))),
                },
            }
        }
    }
}

/// A connection lent to one exchange: back to the pool at the end of its
/// body ([`Lease::release`]), or after hyper drains it when the body is
/// dropped early (`Drop`); closed after an error.
pub(super) struct Lease {
    tx: Option<Sender>,
    pool: Arc<Pool>,
}

impl Lease {
    fn release(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.pool.checkin(tx);
        }
    }
}

/// How long a connection whose body was dropped unread may take to become
/// free again (hyper drains what is already there, else closes it).
const DRAIN_FOR: Duration = Duration::from_secs(2);

impl Drop for Lease {
    /// A body dropped before its end (a stream read up to `[DONE]`, not to
    /// the end of the HTTP body) leaves a connection that is free again once
    /// hyper has drained the rest: it is pooled then, or closed.
    fn drop(&mut self) {
        let Some(mut tx) = self.tx.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = Arc::clone(&self.pool);
        rt.spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(DRAIN_FOR, tx.ready()).await {
                pool.checkin(tx);
            }
        });
    }
}

/// A response body that hands its connection back once read to the end.
pub(super) struct LeanBody {
    body: hyper::body::Incoming,
    lease: Lease,
}

impl LeanBody {
    pub(super) fn new(body: hyper::body::Incoming, lease: Lease) -> Self {
        LeanBody { body, lease }
    }

    /// The next non-empty data frame; `None` at the end of the body.
    pub(super) async fn next(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            match self.body.frame().await {
                None => {
                    self.lease.release();
                    return None;
                }
                Some(Err(e)) => {
                    self.lease.tx = None;
                    return Some(Err(super::error_chain(&e)));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Some(Ok(data));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::StreamBody;
    use hyper::body::Frame;

    use super::*;

    /// A server counting its connections. `/sse` answers in two chunks (a
    /// chunked body); every connection is dropped `life` after it opened.
    async fn server(life: Duration) -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: Request<hyper::body::Incoming>| async move {
                            let frames: Vec<Result<Frame<Bytes>, Infallible>> =
                                if req.uri().path() == "/sse" {
                                    vec![
                                        Ok(Frame::data(Bytes::from("data: a\n\n"))),
                                        Ok(Frame::data(Bytes::from("data: [DONE]\n\n"))),
                                    ]
                                } else {
                                    vec![Ok(Frame::data(Bytes::from(req.uri().path().to_string())))]
                                };
                            Ok::<_, Infallible>(Response::new(StreamBody::new(
                                futures_util::stream::iter(frames),
                            )))
                        },
                    );
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = tokio::time::sleep(life) => {}
                    }
                });
            }
        });
        (format!("http://{addr}"), accepted)
    }

    async fn get(lean: &Lean, path: &str) -> (String, LeanBody) {
        let req = lean
            .request("GET", path)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (resp, lease) = lean.send(req).await.unwrap();
        let mut body = LeanBody::new(resp.into_body(), lease);
        let first = body.next().await.unwrap().unwrap();
        (String::from_utf8_lossy(&first).into_owned(), body)
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_is_read_or_drained() {
        let (base, accepted) = server(Duration::from_secs(30)).await;
        let lean = Lean::for_base(&base, Duration::from_secs(5)).unwrap();
        for path in ["/a", "/b", "/c"] {
            let (text, mut body) = get(&lean, path).await;
            assert_eq!(text, path);
            assert!(body.next().await.is_none());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Read up to `[DONE]` but not to the end of the HTTP body (as the
        // stream pump does), then drop: hyper drains the last chunk and the
        // connection goes back to the pool.
        let (text, mut body) = get(&lean, "/sse").await;
        assert_eq!(text, "data: a\n\n");
        let done = body.next().await.unwrap().unwrap();
        assert_eq!(&done[..], b"data: [DONE]\n\n");
        drop(body);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (text, _) = get(&lean, "/d").await;
        assert_eq!(text, "/d");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_is_replaced() {
        let (base, accepted) = server(Duration::from_millis(100)).await;
        let lean = Lean::for_base(&base, Duration::from_secs(5)).unwrap();
        for path in ["/one", "/two"] {
            let (text, mut body) = get(&lean, path).await;
            assert_eq!(text, path);
            assert!(body.next().await.is_none());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error_naming_the_address() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let lean = Lean::for_base(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
        let req = lean
            .request("GET", "/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let e = lean.send(req).await.err().unwrap();
        assert!(e.0.contains(&format!("connect to {addr}")), "{}", e.0);
    }

    #[test]
    fn only_plain_http_without_credentials_is_carried() {
        let t = Duration::from_secs(1);
        let l = Lean::for_base("http://127.0.0.1:9100", t).unwrap();
        assert_eq!((l.addr.as_str(), l.prefix.as_str()), ("127.0.0.1:9100", ""));
        let l = Lean::for_base("http://localhost/proxy", t).unwrap();
        assert_eq!(
            (l.addr.as_str(), l.host.as_str()),
            ("localhost:80", "localhost")
        );
        assert_eq!(l.prefix, "/proxy");
        let l = Lean::for_base("http://[::1]:8080", t).unwrap();
        assert_eq!(l.addr, "[::1]:8080");
        for base in [
            "https://api.openai.com",
            "http://user:pw@127.0.0.1:9100",
            "http://",
            "http://h/p?x=1",
            "ftp://h",
        ] {
            assert!(Lean::for_base(base, t).is_none(), "{base}");
        }
    }
}
