//! The Redis backend (`[state] backend = "redis"`): replicas share rate-limit
//! buckets, token budgets, approvals, owner revocations and session bindings.
//!
//! Every mutation is one Lua script (EVALSHA through [`::redis::Script`],
//! which re-loads a script Redis has forgotten, e.g. after a restart) or one
//! single atomic command, so two replicas never interleave a read and a
//! write. Every operation runs under the configured timeout and a failure —
//! connection refused, no answer in time, a script error — is a
//! [`StateError::Unavailable`] naming the operation, the server and what went
//! wrong; checks turn it into a 503 `state_unavailable` (fail closed). The
//! connection is a [`ConnectionManager`]: made on first use (a gate starts
//! even while Redis is down) and re-made by itself when Redis comes back.
//!
//! Keys live under the prefix (default `signet:`) and carry TTLs, so nothing
//! outlives its use: a refilling bucket expires when it would be full again,
//! a hard quota 30 days after its last use, a budget one window after its last
//! change, an approval [`APPROVAL_RETENTION_MS`] after its last deadline.
//!
//! Time: buckets and budgets use the Redis server's clock (`TIME`), one clock
//! for all replicas; tests inject a [`Clock`] instead. Standalone Redis (or a
//! primary); Redis Cluster is not supported (eviction touches keys a script
//! computes).
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | settings, the connection, timeouts and error mapping, key layout |
//! | `ops.rs` | each backend operation: script arguments in, typed answers out |
//! | `lua/*.lua` | the scripts |
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, Script};

use super::{Clock, StateError};

mod ops;

/// How long an approval record is kept after its last deadline (expiry,
/// token expiry, decision or consumption): 7 days.
pub const APPROVAL_RETENTION_MS: u64 = 7 * 86_400_000;
/// How long a hard-quota bucket (no refill) is kept after its last use: 30 days.
pub const HARD_QUOTA_IDLE_MS: u64 = 30 * 86_400_000;
/// At most this many approvals are answered by one list.
const LIST_LIMIT: usize = 10_000;

/// Where and how to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` or `redis+unix:///path`.
    pub url: String,
    /// Prefix of every key (e.g. `signet:`), so one Redis can serve several gates.
    pub key_prefix: String,
    /// Longest wait for one operation, connecting included.
    pub timeout: Duration,
}

struct Scripts {
    take: Script,
    budget: Script,
    approval_create: Script,
    approval_update: Script,
    approval_list: Script,
    session_bind: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            take: Script::new(include_str!("lua/take.lua")),
            budget: Script::new(include_str!("lua/budget.lua")),
            approval_create: Script::new(include_str!("lua/approval_create.lua")),
            approval_update: Script::new(include_str!("lua/approval_update.lua")),
            approval_list: Script::new(include_str!("lua/approval_list.lua")),
            session_bind: Script::new(include_str!("lua/session_bind.lua")),
        }
    }
}

/// The Redis state backend.
pub struct RedisState {
    client: ::redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    shown_url: String,
    clock: Option<Arc<dyn Clock>>,
    scripts: Scripts,
}

/// The URL without its password, for messages.
fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// What went wrong, in words an operator can act on.
fn describe(e: &RedisError) -> String {
    let what = if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_connection_dropped() {
        "connection lost"
    } else if e.is_io_error() {
        "I/O error"
    } else {
        "error"
    };
    format!("{what} ({e})")
}

impl RedisState {
    /// A backend for `settings`. Checks the URL only; the connection is made
    /// on first use (and re-made whenever it is lost), so this never blocks.
    pub fn new(settings: &RedisSettings) -> Result<Self, StateError> {
        let shown = shown_url(&settings.url);
        let client =
            ::redis::Client::open(settings.url.as_str()).map_err(|e| StateError::Unavailable {
                backend: "redis",
                detail: format!("invalid Redis URL {shown}: {e}"),
            })?;
        Ok(RedisState {
            client,
            conn: tokio::sync::OnceCell::new(),
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout.max(Duration::from_millis(1)),
            shown_url: shown,
            clock: None,
            scripts: Scripts::new(),
        })
    }

    /// Take bucket and budget time from `clock` instead of the Redis server (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The server, without its password.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// One round trip (`PING`) under the timeout: is Redis answering?
    pub async fn ping(&self) -> Result<(), StateError> {
        self.run("ping", |mut c| async move {
            ::redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(drop)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(':');
            }
            k.push_str(p);
        }
        k
    }

    /// `now_ms` for a script: the injected clock, or 0 (the server's `TIME`).
    fn now_arg(&self) -> u64 {
        self.clock.as_ref().map_or(0, |c| c.now_ms())
    }

    fn unavailable(&self, op: &str, what: String) -> StateError {
        StateError::Unavailable {
            backend: "redis",
            detail: format!("{op} at {}: {what}", self.shown_url),
        }
    }

    /// Run `f` on the connection under the timeout; any failure is
    /// [`StateError::Unavailable`] naming `op`. A connection refused is tried
    /// once more within the same deadline: the manager reconnects after a
    /// failed connection, so the first request after Redis comes back
    /// succeeds instead of reporting the stale failure (nothing was sent, so
    /// nothing runs twice).
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StateError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempt = async {
            let conn = self
                .conn
                .get_or_try_init(|| async {
                    let cfg = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout))
                        .set_number_of_retries(1)
                        .set_min_delay(Duration::from_millis(20))
                        .set_max_delay(Duration::from_millis(200));
                    ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
                })
                .await?
                .clone();
            match f(conn.clone()).await {
                Err(e) if e.is_connection_refusal() => f(conn).await,
                r => r,
            }
        };
        let waited = || format!("no answer within {} ms", self.timeout.as_millis());
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(self.unavailable(op, waited())),
            Ok(Err(e)) => Err(self.unavailable(op, describe(&e))),
            Err(_) => Err(self.unavailable(op, waited())),
        }
    }

    /// Run `script` with `keys` and `args` (EVALSHA; re-loaded on NOSCRIPT).
    async fn eval(
        &self,
        op: &'static str,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<::redis::Value, StateError> {
        self.run(op, |mut c| {
            let (keys, args) = (keys.clone(), args.clone());
            async move {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                for a in &args {
                    inv.arg(a);
                }
                inv.invoke_async(&mut c).await
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            shown_url("redis://user:s3cret@cache:6379/2"),
            "redis://***@cache:6379/2"
        );
        assert_eq!(
            shown_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            shown_url("redis+unix:///run/r.sock"),
            "redis+unix:///run/r.sock"
        );
    }

    #[test]
    fn bad_urls_are_refused_up_front() {
        let e = RedisState::new(&RedisSettings {
            url: "http://x".into(),
            key_prefix: "t:".into(),
            timeout: Duration::from_millis(100),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("invalid Redis URL"), "{e}");
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn state(port: u16, timeout_ms: u64) -> RedisState {
        RedisState::new(&RedisSettings {
            url: format!("redis://127.0.0.1:{port}"),
            key_prefix: "t:".into(),
            timeout: Duration::from_millis(timeout_ms),
        })
        .unwrap()
    }

    fn take() -> super::super::TakeTokens {
        super::super::TakeTokens {
            namespace: "n".into(),
            keys: vec!["k".into()],
            cost: 1,
            capacity: 1,
            refill_per_second: 0.0,
            max_keys: 10,
        }
    }

    #[test]
    fn refused_connection_is_unavailable_quickly() {
        use super::super::StateBackend;
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = state(port, 500);
        rt().block_on(async {
            for _ in 0..3 {
                let t = std::time::Instant::now();
                let e = s.take_tokens(take()).wait().await.unwrap_err().to_string();
                assert!(
                    t.elapsed() < Duration::from_millis(1500),
                    "{:?}",
                    t.elapsed()
                );
                assert!(
                    e.contains("state_unavailable")
                        && e.contains("redis")
                        && e.contains("take_tokens")
                        && e.contains(&port.to_string()),
                    "{e}"
                );
            }
        });
    }

    #[test]
    fn a_server_that_never_answers_times_out_within_the_timeout() {
        use super::super::StateBackend;
        // Accepts connections, never replies.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for c in listener.incoming().take(8) {
                conns.push(c);
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        let s = state(port, 200);
        rt().block_on(async {
            for _ in 0..2 {
                let t = std::time::Instant::now();
                let e = s.take_tokens(take()).wait().await.unwrap_err().to_string();
                let took = t.elapsed();
                assert!(
                    took >= Duration::from_millis(150) && took < Duration::from_millis(900),
                    "{took:?}"
                );
                assert!(e.contains("take_tokens"), "{e}");
            }
        });
        drop(held);
    }
}
