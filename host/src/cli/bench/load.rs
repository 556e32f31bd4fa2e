//! The load generator of `signet bench`: a lean hyper HTTP/1 client (one
//! kept-alive connection per in-flight request, `TCP_NODELAY`, no pool
//! bookkeeping beyond a free list), a closed-loop driver (C workers, each
//! sending its next request when the previous one ends) and an open-loop
//! driver (requests issued on a fixed schedule at R/s; latency counted from
//! the *scheduled* send time, so a stalled server cannot hide its queueing —
//! no coordinated omission), and a log-bucket latency histogram.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Latency histogram over nanoseconds: 64 linear sub-buckets per power of
/// two (relative error under 1.6%), exact count, sum and max.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
}

const SUB: u64 = 64;
const BUCKETS: usize = 64 * 64;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            n: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let shift = u64::from(63 - v.leading_zeros()) - 6;
        let idx = SUB * shift + (v >> shift);
        usize::try_from(idx).unwrap_or(BUCKETS - 1).min(BUCKETS - 1)
    }

    /// The middle of bucket `idx`, in ns.
    fn value(idx: usize) -> u64 {
        let idx = idx as u64;
        if idx < SUB {
            return idx;
        }
        let shift = idx / SUB - 1;
        let m = idx - SUB * shift;
        (m << shift) + ((1u64 << shift) >> 1)
    }

    /// Record one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(Self::index(ns)) {
            *c += 1;
        }
        self.n += 1;
        self.sum += u128::from(ns);
        self.max = self.max.max(ns);
    }

    /// Add another histogram's samples.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The `q` quantile (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max) as f64 / 1e6;
            }
        }
        self.max as f64 / 1e6
    }

    /// Mean, in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        (self.sum / u128::from(self.n)) as f64 / 1e6
    }
}

/// Where requests go: `http://HOST:PORT` (a path prefix is ignored; the
/// workload names the path).
#[derive(Clone, Debug)]
pub struct Target {
    addr: SocketAddr,
    authority: String,
}

impl Target {
    /// Parse an `http://host:port` URL (plain HTTP on an IP or `localhost`).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// targets are supported"))?;
        let authority = rest.split('/').next().unwrap_or(rest).to_string();
        let resolvable = authority.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = resolvable
            .parse()
            .with_context(|| format!("{url}: expected http://IP:PORT"))?;
        Ok(Self { addr, authority })
    }
}

/// Which API a request speaks (and so its endpoint and its stream events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`.
    OpenAi,
    /// `/v1/messages`.
    Anthropic,
}

impl Api {
    /// The endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAi => "/v1/chat/completions",
            Api::Anthropic => "/v1/messages",
        }
    }

    /// The API whose endpoint `path` ends with, if any (a prefix such as a
    /// mount point is allowed).
    pub fn of_path(path: &str) -> Option<Self> {
        [Api::OpenAi, Api::Anthropic]
            .into_iter()
            .find(|a| path.ends_with(a.path().trim_start_matches("/v1")))
    }
}

/// What each request sends and how its answer is read.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The API, which names the endpoint.
    pub api: Api,
    /// The JSON request body.
    pub body: Bytes,
    /// Parse the answer for a `signet_abort` event and count the content
    /// bytes of chunks numbered `offend_at` or later delivered before it.
    pub offend_at: Option<usize>,
}

/// What one request saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// HTTP status.
    pub status: u16,
    /// Response body bytes.
    pub bytes: usize,
    /// When the abort event arrived.
    pub abort_at: Option<Instant>,
    /// Content bytes of chunks at or after the offending one, delivered.
    pub bytes_after_offence: usize,
}

/// One kept-alive HTTP/1 connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Open a connection to `t`.
    pub async fn open(t: &Target) -> anyhow::Result<Self> {
        let s = tokio::net::TcpStream::connect(t.addr)
            .await
            .with_context(|| format!("connecting to {}", t.authority))?;
        s.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { tx })
    }

    /// Send one request and read the whole answer.
    pub async fn send(&mut self, t: &Target, w: &Workload) -> anyhow::Result<Seen> {
        self.tx.ready().await?;
        let req = hyper::Request::post(w.api.path())
            .header(hyper::header::HOST, t.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-commit-owner", "human:bench")
            .body(Full::new(w.body.clone()))?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut seen = Seen {
            status,
            ..Seen::default()
        };
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(d) = frame.data_ref() {
                seen.bytes += d.len();
                if w.offend_at.is_some() {
                    let from = kept.len().saturating_sub(16);
                    kept.extend_from_slice(d);
                    if seen.abort_at.is_none() && contains(&kept[from..], b"signet_abort") {
                        seen.abort_at = Some(Instant::now());
                    }
                }
            }
        }
        if let Some(k) = w.offend_at {
            seen.bytes_after_offence = after_offence(&kept, k);
        }
        Ok(seen)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Content bytes of chunks tagged `cNNNNNN` with NNNNNN >= `k`, seen before
/// the abort event.
fn after_offence(body: &[u8], k: usize) -> usize {
    let text = String::from_utf8_lossy(body);
    let mut n = 0;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data.contains("signet_abort") {
            break;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
            continue;
        };
        let content = v
            .pointer("/choices/0/delta/content")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let idx = content
            .strip_prefix('c')
            .and_then(|s| s.get(..6))
            .and_then(|s| s.parse::<usize>().ok());
        if idx.is_some_and(|i| i >= k) {
            n += content.len();
        }
    }
    n
}

/// How long a round may run.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Wall-clock bound.
    pub duration: Duration,
    /// Request-count bound.
    pub requests: u64,
}

/// The outcome of one round against one target.
#[derive(Debug, Default)]
pub struct Round {
    /// Latency of every completed request.
    pub hist: Histogram,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests that failed or were answered non-2xx.
    pub errors: u64,
    /// Response body bytes of the requests counted in `ok`.
    pub bytes: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Open loop: scheduled requests skipped because `max_inflight` were open.
    pub skipped: u64,
    /// Wall-clock time of the round.
    pub elapsed: Duration,
    /// Every request's observations (kept only for abort rounds).
    pub seen: Vec<(u64, Seen)>,
}

impl Round {
    /// Add another round's outcomes to this one.
    pub fn absorb(&mut self, o: Round) {
        self.hist.merge(&o.hist);
        self.ok += o.ok;
        self.errors += o.errors;
        self.bytes += o.bytes;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.skipped += o.skipped;
        self.seen.extend(o.seen);
    }

    fn note(&mut self, r: anyhow::Result<Seen>, latency: Duration, id: u64, keep: bool) {
        match r {
            Ok(s) if (200..300).contains(&s.status) || keep => {
                self.ok += 1;
                self.bytes += s.bytes as u64;
                self.hist.record(latency);
                if keep {
                    self.seen.push((id, s));
                }
            }
            Ok(s) => {
                self.errors += 1;
                self.first_error
                    .get_or_insert_with(|| format!("HTTP {}", s.status));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// Progress shared with the progress bar: requests completed.
pub type Done = Arc<AtomicU64>;

/// The body for request number `id` (abort rounds tag each request so the
/// mock can timestamp its offending chunk).
fn body_for(w: &Workload, id: u64) -> Workload {
    if w.offend_at.is_none() {
        return w.clone();
    }
    let s = String::from_utf8_lossy(&w.body);
    let tagged = s.replacen('{', &format!("{{\"bench_id\":{id},"), 1);
    Workload {
        api: w.api,
        body: Bytes::from(tagged),
        offend_at: w.offend_at,
    }
}

/// Closed loop: `c` workers on their own connections, each sending its next
/// request as soon as the previous one is answered.
pub async fn closed(
    t: &Target,
    w: &Workload,
    c: usize,
    limit: Limit,
    done: &Done,
    id_base: u64,
) -> anyhow::Result<Round> {
    let start = Instant::now();
    let deadline = start + limit.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(c);
    for _ in 0..c.max(1) {
        let (t, w, issued, done) = (t.clone(), w.clone(), issued.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = Round::default();
            let mut conn: Option<Conn> = None;
            loop {
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= limit.requests || Instant::now() >= deadline {
                    break;
                }
                let id = id_base + i;
                let req = body_for(&w, id);
                let t0 = Instant::now();
                let res = match conn.as_mut() {
                    Some(c) => c.send(&t, &req).await,
                    None => match Conn::open(&t).await {
                        Ok(c) => conn.insert(c).send(&t, &req).await,
                        Err(e) => Err(e),
                    },
                };
                if res.is_err() {
                    conn = None;
                }
                r.note(res, t0.elapsed(), id, w.offend_at.is_some());
                done.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    let mut round = Round::default();
    for task in tasks {
        round.absorb(task.await?);
    }
    round.elapsed = start.elapsed();
    Ok(round)
}

/// Open loop: requests scheduled at `rate` per second; latency from the
/// scheduled time. At most `max_inflight` open at once (beyond that a
/// scheduled request is skipped and counted).
pub async fn open(
    t: &Target,
    w: &Workload,
    rate: f64,
    max_inflight: usize,
    limit: Limit,
    done: &Done,
) -> anyhow::Result<Round> {
    if rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let free: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Mutex::new(Round::default()));
    let inflight = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit.duration;
    let step = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = Vec::new();
    let mut skipped = 0;
    for i in 0..limit.requests {
        let due = start + step.mul_f64(i as f64);
        if due >= deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        if inflight.load(Ordering::Relaxed) >= max_inflight as u64 {
            skipped += 1;
            continue;
        }
        inflight.fetch_add(1, Ordering::Relaxed);
        let (t, w, free, shared, inflight, done) = (
            t.clone(),
            w.clone(),
            free.clone(),
            shared.clone(),
            inflight.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let pooled = free.lock().ok().and_then(|mut f| f.pop());
            let conn = match pooled {
                Some(c) => Ok(c),
                None => Conn::open(&t).await,
            };
            let res = match conn {
                Ok(mut c) => {
                    let r = c.send(&t, &w).await;
                    if r.is_ok() {
                        if let Ok(mut f) = free.lock() {
                            f.push(c);
                        }
                    }
                    r
                }
                Err(e) => Err(e),
            };
            let latency = due.elapsed();
            if let Ok(mut s) = shared.lock() {
                s.note(res, latency, i, false);
            }
            inflight.fetch_sub(1, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
        }));
        tasks.retain(|t| !t.is_finished());
    }
    for task in tasks {
        task.await?;
    }
    let mut round = std::mem::take(&mut *shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    round.skipped = skipped;
    round.elapsed = start.elapsed();
    Ok(round)
}

/// Open `n` streams at once and hold them until every one has started
/// answering; returns when all are complete. Used for the memory of many
/// concurrent streams (the caller samples the gate's RSS meanwhile).
pub async fn many_streams(
    t: &Target,
    w: &Workload,
    n: usize,
    done: &Done,
) -> anyhow::Result<Round> {
    closed(
        t,
        w,
        n,
        Limit {
            duration: Duration::from_secs(600),
            requests: n as u64,
        },
        done,
        0,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_ms(0.5);
        assert!((p50 - 0.5).abs() < 0.01, "{p50}");
        let p99 = h.quantile_ms(0.99);
        assert!((p99 - 0.99).abs() < 0.02, "{p99}");
        assert!(h.quantile_ms(1.0) <= 1.0);
    }

    #[test]
    fn counts_bytes_after_the_offence() {
        let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"c000001 ok\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"c000002 bad\"}}]}\n\ndata: {\"signet_abort\":true}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"c000003 x\"}}]}\n\n";
        assert_eq!(after_offence(body, 2), "c000002 bad".len());
        assert_eq!(after_offence(body, 3), 0);
    }
}
