//! The upstream model server: connect and read timeouts, redirects never
//! followed, streaming reads. A plain-HTTP upstream is spoken to by `lean`
//! (HTTP/1.1 on hyper, own connection pool); HTTPS, a proxy from the
//! environment or credentials in the URL go through one pooled reqwest
//! client (rustls on ring). The only module that imports reqwest.
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

mod http;
mod lean;

pub use http::{admin_call, Webhook};

/// Talking to the upstream failed. Always answered with 502 + `X-Signet-Upstream`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("upstream {label} unreachable: {detail}")]
    Connect {
        /// Upstream label.
        label: String,
        /// Why.
        detail: String,
    },
    /// No answer in time.
    #[error("upstream {label} timed out after {ms} ms")]
    Timeout {
        /// Upstream label.
        label: String,
        /// The timeout.
        ms: u64,
    },
    /// The upstream answered with a redirect, which the gate never follows.
    #[error("upstream {label} answered {status} redirect to {location:?}; signet does not follow redirects: point [upstream] url at the final address")]
    Redirect {
        /// Upstream label.
        label: String,
        /// Status.
        status: u16,
        /// Location header.
        location: String,
    },
    /// The body broke off or exceeded the size cap.
    #[error("upstream {label} response failed: {detail}")]
    Body {
        /// Upstream label.
        label: String,
        /// Why.
        detail: String,
    },
    /// The client could not be built (bad URL, TLS setup).
    #[error("upstream client: {0}")]
    Setup(String),
}

type BodyStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// A response body from either transport.
enum Body {
    Reqwest(BodyStream),
    Lean(lean::LeanBody),
}

impl Body {
    async fn next(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Body::Reqwest(s) => futures_util::StreamExt::next(s)
                .await
                .map(|r| r.map_err(|e| error_chain(&e))),
            Body::Lean(b) => b.next().await,
        }
    }
}

/// A response from the upstream.
pub struct Incoming {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// True for `text/event-stream`.
    pub streaming: bool,
    /// The body alone: the response's headers are dropped on arrival, since
    /// the client's header values share its connection's first read buffer
    /// and would keep that buffer (8 KiB) alive for the whole stream.
    body: Option<Body>,
    limit: usize,
    label: String,
    read_timeout: Duration,
}

impl Incoming {
    /// Read the whole body (unary), up to the size cap.
    pub async fn bytes(mut self) -> Result<Bytes, UpstreamError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    /// The next piece of the body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let Some(resp) = self.body.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(self.read_timeout, resp.next()).await {
            Err(_) => Err(UpstreamError::Timeout {
                label: self.label.clone(),
                ms: self.read_timeout.as_millis() as u64,
            }),
            Ok(Some(Err(detail))) => Err(UpstreamError::Body {
                label: self.label.clone(),
                detail,
            }),
            Ok(None) => {
                self.body = None;
                Ok(None)
            }
            Ok(Some(Ok(b))) => {
                self.limit = self.limit.saturating_sub(b.len());
                if self.limit == 0 {
                    return Err(UpstreamError::Body {
                        label: self.label.clone(),
                        detail: "response larger than the gate's upstream body cap".into(),
                    });
                }
                Ok(Some(b))
            }
        }
    }
}

/// The configured upstream.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    /// The plain-HTTP transport, when it can carry this upstream.
    lean: Option<std::sync::Arc<lean::Lean>>,
    base: String,
    label: String,
    api_key: Option<String>,
    timeout: Duration,
    max_body: usize,
    /// The gated endpoints' URLs, parsed once (a URL parse per request showed
    /// in profiles).
    parsed: Vec<(&'static str, reqwest::Url)>,
}

/// Paths whose full URL is parsed once at startup.
const HOT_PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
];

/// Headers forwarded to the upstream (lower-case names); everything else,
/// including owner and classification headers, stays at the gate.
pub const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "openai-beta",
    "openai-organization",
    "anthropic-version",
    "anthropic-beta",
    "x-api-key",
];

/// How long a new upstream connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn install_crypto_provider() {
    // Idempotent: a second install returns Err, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Upstream {
    /// A client for `base` (e.g. `https://api.openai.com`); `label` names it in
    /// `X-Signet-Upstream` and errors.
    pub fn new(
        base: &str,
        label: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| UpstreamError::Setup(e.to_string()))?;
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        let parsed = HOT_PATHS
            .iter()
            .filter_map(|p| {
                reqwest::Url::parse(&format!("{base}{p}"))
                    .ok()
                    .map(|u| (*p, u))
            })
            .collect();
        Ok(Upstream {
            lean: lean::Lean::for_base(&base, CONNECT_TIMEOUT).map(std::sync::Arc::new),
            parsed,
            client,
            base,
            label: label.to_string(),
            api_key,
            timeout,
            max_body: 64 * 1024 * 1024,
        })
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send a request. `headers` are the client's (lower-case names); only
    /// [`FORWARDED_HEADERS`] go through, and the configured key replaces the
    /// client's credentials.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Option<Bytes>,
    ) -> Result<Incoming, UpstreamError> {
        self.send_inner(method, path_and_query, headers, body, true)
            .await
    }

    async fn send_inner(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Option<Bytes>,
        filter: bool,
    ) -> Result<Incoming, UpstreamError> {
        let anthropic = path_and_query.starts_with("/v1/messages");
        // The configured key applies to forwarded requests only, never to send_exact.
        let key = if filter {
            self.api_key.as_deref()
        } else {
            None
        };
        let mut out: Vec<(&str, std::borrow::Cow<'_, str>)> = Vec::with_capacity(headers.len() + 2);
        for (n, v) in headers {
            if filter && !FORWARDED_HEADERS.contains(&n.as_str()) {
                continue;
            }
            if key.is_some() && (n == "authorization" || n == "x-api-key") {
                continue;
            }
            out.push((n.as_str(), v.as_str().into()));
        }
        if let Some(k) = key {
            out.push(if anthropic {
                ("x-api-key", k.into())
            } else {
                ("authorization", format!("Bearer {k}").into())
            });
        }
        if body.is_some() {
            out.push(("content-type", "application/json".into()));
        }
        let sent = async {
            match &self.lean {
                Some(lean) => {
                    self.send_lean(lean, method, path_and_query, &out, body)
                        .await
                }
                None => self.send_reqwest(method, path_and_query, &out, body).await,
            }
        };
        match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => Err(UpstreamError::Timeout {
                label: self.label.clone(),
                ms: self.timeout.as_millis() as u64,
            }),
            Ok(r) => r,
        }
    }

    fn connect_error(&self, detail: String) -> UpstreamError {
        UpstreamError::Connect {
            label: self.label.clone(),
            detail,
        }
    }

    /// The response head's content type, or the redirect error.
    fn head(&self, status: u16, headers: &hyper::HeaderMap) -> Result<String, UpstreamError> {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if (300..400).contains(&status) {
            return Err(UpstreamError::Redirect {
                label: self.label.clone(),
                status,
                location: header("location").unwrap_or_default(),
            });
        }
        Ok(header("content-type").unwrap_or_else(|| "application/json".into()))
    }

    fn incoming(&self, status: u16, content_type: String, body: Body) -> Incoming {
        Incoming {
            status,
            streaming: content_type.starts_with("text/event-stream"),
            content_type,
            body: Some(body),
            limit: self.max_body,
            label: self.label.clone(),
            read_timeout: self.timeout,
        }
    }

    async fn send_lean(
        &self,
        lean: &lean::Lean,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, std::borrow::Cow<'_, str>)],
        body: Option<Bytes>,
    ) -> Result<Incoming, UpstreamError> {
        let mut rb = lean.request(method, path_and_query);
        for (n, v) in headers {
            rb = rb.header(*n, v.as_ref());
        }
        let req = rb
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| self.connect_error(format!("cannot build the request: {e}")))?;
        let (resp, lease) = lean.send(req).await.map_err(|e| self.connect_error(e.0))?;
        // The head is dropped here: only the body travels on (see `Incoming`).
        let (parts, body) = resp.into_parts();
        let status = parts.status.as_u16();
        let content_type = self.head(status, &parts.headers)?;
        Ok(self.incoming(
            status,
            content_type,
            Body::Lean(lean::LeanBody::new(body, lease)),
        ))
    }

    async fn send_reqwest(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, std::borrow::Cow<'_, str>)],
        body: Option<Bytes>,
    ) -> Result<Incoming, UpstreamError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| UpstreamError::Setup(e.to_string()))?;
        let mut rb = match self.parsed.iter().find(|(p, _)| *p == path_and_query) {
            Some((_, url)) => self.client.request(method, url.clone()),
            None => self
                .client
                .request(method, format!("{}{}", self.base, path_and_query)),
        };
        for (n, v) in headers {
            rb = rb.header(*n, v.as_ref());
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let resp = rb.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout {
                    label: self.label.clone(),
                    ms: self.timeout.as_millis() as u64,
                }
            } else {
                self.connect_error(error_chain(&e))
            }
        })?;
        let status = resp.status().as_u16();
        let content_type = self.head(status, resp.headers())?;
        Ok(self.incoming(
            status,
            content_type,
            Body::Reqwest(Box::pin(resp.bytes_stream())),
        ))
    }

    /// Send a request with exactly these headers (no filtering, no configured
    /// key): for the gate's own tools (`signet bench`, `signet doctor`) that
    /// talk to a gate or service as a client would.
    pub async fn send_exact(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Option<Bytes>,
    ) -> Result<Incoming, UpstreamError> {
        self.send_inner(method, path_and_query, headers, body, false)
            .await
    }

    /// True when the upstream answers at all (any HTTP status) within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> Result<u16, String> {
        let req = self.client.get(format!("{}/v1/models", self.base));
        match tokio::time::timeout(timeout, req.send()).await {
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            Ok(Err(e)) => Err(error_chain(&e)),
            Ok(Ok(r)) => Ok(r.status().as_u16()),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
