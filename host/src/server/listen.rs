//! Accepting connections: one HTTP/1 connection task per socket on hyper's
//! server, the caller's address as `ConnectInfo<SocketAddr>`, and the first
//! half of graceful shutdown (stop accepting, ask every connection to close
//! after its current response). A caller gets [`HEADER_READ_TIMEOUT`] to
//! send each request head — from connecting, and again from the end of each
//! response on a kept-alive connection — after which hyper closes the
//! connection: a client that trickles its headers (or holds a connection idle)
//! cannot pin a connection and its buffers forever.
//!
//! Not `axum::serve`: it sniffs each connection for the HTTP/2 preface and
//! hands hyper those first 24 bytes on their own, so hyper's read of the
//! request head always came up short and its 8 KiB read buffer grew to 16 KiB,
//! which every open connection (a stream's, for its whole length) then held.
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service as _;

use super::{Inflight, InflightGuard};

/// How long a caller has to send a request head (see the module docs).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Bind the gate's listener with `TCP_NODELAY` set on it, which Linux (and the
/// BSDs) hand down to every accepted connection: without it, the second small
/// write of a response (an SSE event after the headers) waits for the client's
/// delayed ACK, up to 40 ms per stream.
pub async fn bind_nodelay(host: &str, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let sock = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        sock.set_reuseaddr(true)?;
        sock.set_nodelay(true)?;
        match sock.bind(addr) {
            Ok(()) => return sock.listen(1024),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the host resolved to no address")))
}

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting
/// and tell every open connection to close once its response is done. The
/// returned count of open connections reaches zero as they finish.
pub async fn accept_until(
    app: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    header_timeout: Duration,
) -> Inflight {
    let open = Inflight::default();
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let conn = connection(app.clone(), sock, peer, stop_rx.clone(), open.enter(), header_timeout);
                    tokio::spawn(conn);
                }
                Err(e) => accept_failed(&e).await,
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(());
    open
}

/// A failed `accept`: one connection's trouble (reset before it was accepted)
/// is skipped; anything else (out of file descriptors) is reported and the
/// loop pauses so it does not spin while the condition lasts.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    eprintln!("signet: accepting a connection failed: {e}; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One caller connection, until it closes or shutdown asks it to.
async fn connection(
    app: Router,
    sock: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<()>,
    _open: InflightGuard,
    header_timeout: Duration,
) {
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(sock), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        // A send or the sender's drop: either way the gate is stopping.
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let local = s.local_addr().unwrap().to_string();
        let req = format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        (local, out)
    }

    #[tokio::test]
    async fn serves_with_the_callers_address_and_finishes_responses_on_shutdown() {
        let app = Router::new()
            .route(
                "/who",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(accept_until(
            app,
            listener,
            async {
                let _ = stopped.await;
            },
            HEADER_READ_TIMEOUT,
        ));

        let (local, resp) = get_path(addr, "/who").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(
            resp.ends_with(&local),
            "the handler saw another address: {resp}"
        );

        // A response under way when shutdown comes still completes.
        let slow = tokio::spawn(get_path(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let open = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("accepting stops at once")
            .unwrap();
        let (_, resp) = slow.await.unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.ends_with("done"),
            "{resp}"
        );
        assert!(
            open.drained(Duration::from_secs(5)).await,
            "a connection stayed open"
        );
        // And nothing is accepted any more.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    /// Read until the peer closes (Ok) or `within` passes (Err).
    async fn closed_within(s: &mut TcpStream, within: Duration) -> Result<String, ()> {
        let mut out = Vec::new();
        match tokio::time::timeout(within, s.read_to_end(&mut out)).await {
            Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
            Err(_) => Err(()),
        }
    }

    #[tokio::test]
    async fn a_caller_that_trickles_its_head_or_idles_is_disconnected() {
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "done"
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(300);
        let server = tokio::spawn(accept_until(app, listener, std::future::pending(), timeout));
        // Half a head, then nothing: closed after the timeout.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n")
            .await
            .unwrap();
        let t = std::time::Instant::now();
        closed_within(&mut s, Duration::from_secs(10))
            .await
            .expect("a trickled head is cut off");
        assert!(
            t.elapsed() >= timeout - Duration::from_millis(50),
            "{:?}",
            t.elapsed()
        );
        // A handler slower than the timeout is not cut: the timeout is for
        // the head only. Then the idle kept-alive connection is closed.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        let out = closed_within(&mut s, Duration::from_secs(10))
            .await
            .expect("the idle connection is closed after its response");
        assert!(
            out.starts_with("HTTP/1.1 200") && out.ends_with("done"),
            "{out}"
        );
        // Without the timeout the same connection stays open.
        server.abort();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let server = tokio::spawn(accept_until(
            app,
            listener,
            std::future::pending(),
            HEADER_READ_TIMEOUT,
        ));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n").await.unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(1)).await.is_err());
        server.abort();
    }
}
