//! The HTTP surface: `router(state)` as a plain function (testable without a
//! socket), the gated handlers, errors → HTTP in one place, ops endpoints,
//! graceful shutdown, and the built-in demo upstream for `--dev`.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | state, router, serving with graceful shutdown |
//! | `error.rs` | every gate-made status code and JSON body |
//! | `preflight.rs` | size, JSON, depth, NaN, header checks |
//! | `exchange.rs` | one request: rows, RECORD, receipt, response headers |
//! | `gated.rs` | gated endpoints and the unary response path |
//! | `stream.rs` | the streaming response path |
//! | `listen.rs` | accepting connections, HTTP/1 serving, stopping on shutdown |
//! | `ops.rs` | healthz, readyz, version, metrics, models pass-through, 404/405 |
//! | `metrics.rs` | Prometheus counters and histograms |
//! | `log.rs` | one log line per request, text or JSON |
//! | `demo.rs` | the built-in demo upstream (`--dev` without `--upstream`) |
//! | `admin.rs` | the approvals admin API, its audit rows, the expiry sweeper, the webhook |
//! | `ui.rs` | `/signet/ui`, the approvers' web page |
//! | `bare.rs` | a bare forwarder on the same HTTP stacks, no checks (the bench's floor) |
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

pub mod admin;
pub mod bare;
pub mod demo;
mod error;
mod exchange;
mod gated;
mod listen;
mod log;
mod metrics;
mod ops;
mod preflight;
mod stream;
#[cfg(test)]
mod tests;
mod ui;

pub use listen::bind_nodelay;
pub use log::RequestLog;
pub use metrics::Metrics;

use crate::pipeline::{AuditLog, Pipeline};
use crate::upstream::Upstream;

/// Everything a request handler needs.
pub struct AppState {
    /// The checks.
    pub pipeline: Arc<Pipeline>,
    /// The model server.
    pub upstream: Upstream,
    /// Where decisions go.
    pub audit: Arc<dyn AuditLog>,
    /// Metrics (also the pipeline's latency observer).
    pub metrics: Arc<Metrics>,
    /// Hide reasons and check names from clients.
    pub strict_errors: bool,
    /// Request body cap.
    pub max_body: usize,
    /// Requests (including streams still pumping) in flight.
    pub inflight: Inflight,
    /// The per-request log.
    pub log: RequestLog,
    /// The approvals admin API and web page (off when `None`).
    pub admin: Option<admin::Admin>,
}

/// Counts requests in flight so shutdown can wait for them.
#[derive(Default, Clone)]
pub struct Inflight(Arc<(AtomicUsize, Notify)>);

/// Held while a request is in flight.
pub struct InflightGuard(Inflight);

impl Inflight {
    /// Mark one request as started.
    pub fn enter(&self) -> InflightGuard {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self.clone())
    }
    /// Requests in flight.
    pub fn count(&self) -> usize {
        self.0 .0.load(Ordering::SeqCst)
    }
    /// Wait until none are in flight, at most `grace`. True when drained.
    pub async fn drained(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.0 .1.notified();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0 .0 .0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0 .0 .1.notify_waiters();
        }
    }
}

/// The gate's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(gated::chat))
        .route("/v1/completions", post(gated::completions))
        .route("/v1/embeddings", post(gated::embeddings))
        .route("/v1/messages", post(gated::messages))
        .route("/v1/models", get(ops::models))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/version", get(ops::version))
        .route("/metrics", get(ops::metrics))
        .route("/signet/approvals", get(admin::list))
        .route("/signet/approvals/{id}", get(admin::show))
        .route("/signet/approvals/{id}/approve", post(admin::approve_route))
        .route("/signet/approvals/{id}/deny", post(admin::deny_route))
        .route("/signet/ui", get(ui::index))
        .route("/signet/ui/login", post(ui::login))
        .route("/signet/ui/logout", post(ui::logout))
        .route("/signet/ui/approvals/{id}/approve", post(ui::approve))
        .route("/signet/ui/approvals/{id}/deny", post(ui::deny))
        .fallback(ops::fallback)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serve until `shutdown` resolves, then stop accepting, let in-flight
/// requests (streams included) finish for up to `grace`, and return.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let inflight = state.inflight.clone();
    let open = listen::accept_until(
        router(state),
        listener,
        shutdown,
        listen::HEADER_READ_TIMEOUT,
    )
    .await;
    // Connections finish their responses; streams pumping in the background
    // finish their RECORD. Both are bounded by the grace period.
    let drained = tokio::time::timeout(grace, async {
        open.drained(grace).await && inflight.drained(grace).await
    })
    .await;
    if !matches!(drained, Ok(true)) {
        eprintln!(
            "signet: shutdown grace of {} ms elapsed with {} request(s) still in flight",
            grace.as_millis(),
            inflight.count()
        );
    }
    Ok(())
}
