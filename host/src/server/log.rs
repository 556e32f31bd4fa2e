//! One log line per finished request (`--log-format text|json`), written by a
//! logger thread so the async reactor never blocks on stdout.
use std::io::Write;
use std::sync::mpsc;

use crate::config::LogFormat;

/// What one request's log line says.
pub struct RequestLine<'a> {
    /// Correlation id (the request's `pipeline.complete` entry).
    pub correlation_id: &'a str,
    /// Path.
    pub path: &'a str,
    /// HTTP status sent.
    pub status: u16,
    /// How it ended.
    pub outcome: &'a str,
    /// `human:alice`, … or empty.
    pub owner: &'a str,
    /// Final decision.
    pub decision: &'a str,
    /// Deciding check, if refused.
    pub check: Option<&'a str>,
    /// Total latency (ms).
    pub latency_ms: f64,
    /// Time in the gate itself (ms).
    pub overhead_ms: f64,
    /// Upstream HTTP status, if it was called.
    pub upstream_status: Option<u16>,
}

/// Sends request lines to the logger thread.
pub struct RequestLog {
    format: LogFormat,
    tx: Option<mpsc::Sender<String>>,
}

impl RequestLog {
    /// A logger writing to stdout in `format`.
    pub fn stdout(format: LogFormat) -> Self {
        let (tx, rx) = mpsc::channel::<String>();
        let spawned = std::thread::Builder::new()
            .name("signet-log".into())
            .spawn(move || {
                let out = std::io::stdout();
                // Woken by the first line, the thread waits a few ms and
                // writes everything queued by then with one flush: at most
                // ~200 wake-ups (and write calls) a second, however many
                // requests finish. Stdout itself is line-buffered (a write
                // per line), hence the buffer of our own.
                let mut buf = std::io::BufWriter::with_capacity(64 * 1024, out);
                while let Ok(first) = rx.recv() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    let _ = writeln!(buf, "{first}");
                    while let Ok(line) = rx.try_recv() {
                        let _ = writeln!(buf, "{line}");
                    }
                    let _ = buf.flush();
                }
            });
        RequestLog {
            format,
            tx: spawned.ok().map(|_| tx),
        }
    }

    /// No logging (tests).
    pub fn off() -> Self {
        RequestLog {
            format: LogFormat::Text,
            tx: None,
        }
    }

    /// Log one finished request.
    pub fn request(&self, l: &RequestLine<'_>) {
        let Some(tx) = &self.tx else { return };
        let ts = crate::pipeline::format_timestamp(crate::pipeline::now_ns());
        let line = match self.format {
            LogFormat::Json => serde_json::json!({
                "ts": ts, "level": "info", "msg": "request", "correlation_id": l.correlation_id,
                "path": l.path, "status": l.status, "outcome": l.outcome, "owner": l.owner,
                "decision": l.decision, "check": l.check, "latency_ms": l.latency_ms,
                "gate_overhead_ms": l.overhead_ms, "upstream_status": l.upstream_status,
            })
            .to_string(),
            LogFormat::Text => format!(
                "{ts} {} {} {} owner={} decision={} check={} latency_ms={:.2} overhead_ms={:.3} upstream={} id={}",
                l.path,
                l.status,
                l.outcome,
                if l.owner.is_empty() { "-" } else { l.owner },
                l.decision,
                l.check.unwrap_or("-"),
                l.latency_ms,
                l.overhead_ms,
                l.upstream_status.map_or_else(|| "-".to_string(), |s| s.to_string()),
                l.correlation_id,
            ),
        };
        let _ = tx.send(line);
    }
}
