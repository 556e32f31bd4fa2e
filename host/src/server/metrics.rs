//! Prometheus metrics, hand-rolled: a few labelled counters and histograms
//! behind one mutex (updated a handful of times per request).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS_S.len()];
        }
        for (i, b) in BUCKETS_S.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    decisions: BTreeMap<(String, String, String), u64>,
    stream_aborts: u64,
    audit_appends: u64,
    audit_failures: u64,
    overhead: Histogram,
    stage_latency: BTreeMap<String, Histogram>,
    check_latency: BTreeMap<(String, String), Histogram>,
}

/// The gate's metrics.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl crate::pipeline::CheckObserver for Metrics {
    fn hook_latency(&self, check: &str, stage: crate::checks::Stage, d: Duration) {
        self.with(|m| {
            m.check_latency
                .entry((check.to_string(), stage.as_str().to_string()))
                .or_default()
                .observe(d.as_secs_f64())
        });
    }
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g);
        }
    }
    /// A finished request.
    pub fn request(&self, endpoint: &str, status: u16) {
        self.with(|m| {
            *m.requests
                .entry((endpoint.to_string(), status))
                .or_default() += 1
        });
    }
    /// A recorded decision.
    pub fn decision(&self, check: &str, stage: &str, decision: &str) {
        self.with(|m| {
            *m.decisions
                .entry((check.into(), stage.into(), decision.into()))
                .or_default() += 1
        });
    }
    /// A stream aborted at INSPECTION.
    pub fn stream_abort(&self) {
        self.with(|m| m.stream_aborts += 1);
    }
    /// An audit append (ok or failed).
    pub fn audit_append(&self, ok: bool) {
        self.with(|m| {
            if ok {
                m.audit_appends += 1
            } else {
                m.audit_failures += 1
            }
        });
    }
    /// Time the gate itself spent on a request (excluding the upstream).
    pub fn overhead(&self, d: Duration) {
        self.with(|m| m.overhead.observe(d.as_secs_f64()));
    }
    /// Time spent in one stage's checks.
    pub fn stage_latency(&self, stage: &str, d: Duration) {
        self.with(|m| {
            m.stage_latency
                .entry(stage.to_string())
                .or_default()
                .observe(d.as_secs_f64())
        });
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.0.lock() else { return out };
        let _ = writeln!(out, "# HELP signet_requests_total Requests finished, by endpoint and status.\n# TYPE signet_requests_total counter");
        for ((e, s), n) in &m.requests {
            let _ = writeln!(
                out,
                "signet_requests_total{{endpoint=\"{e}\",status=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP signet_decisions_total Recorded non-allow decisions.\n# TYPE signet_decisions_total counter"
        );
        for ((c, st, d), n) in &m.decisions {
            let _ = writeln!(
                out,
                "signet_decisions_total{{check=\"{c}\",stage=\"{st}\",decision=\"{d}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP signet_stream_aborts_total Streams aborted at INSPECTION.\n# TYPE signet_stream_aborts_total counter\nsignet_stream_aborts_total {}", m.stream_aborts);
        let _ = writeln!(out, "# HELP signet_audit_appends_total Audit rows appended.\n# TYPE signet_audit_appends_total counter\nsignet_audit_appends_total {}", m.audit_appends);
        let _ = writeln!(out, "# HELP signet_audit_append_failures_total Audit appends that failed.\n# TYPE signet_audit_append_failures_total counter\nsignet_audit_append_failures_total {}", m.audit_failures);
        hist(
            &mut out,
            "signet_gate_overhead_seconds",
            "Time spent in the gate per request, upstream excluded.",
            "",
            &m.overhead,
        );
        let _ = writeln!(out, "# HELP signet_stage_latency_seconds Time spent in one stage's checks.\n# TYPE signet_stage_latency_seconds histogram");
        for (stage, h) in &m.stage_latency {
            hist_body(
                &mut out,
                "signet_stage_latency_seconds",
                &format!("stage=\"{stage}\","),
                h,
            );
        }
        let _ = writeln!(
            out,
            "# HELP signet_check_latency_seconds Time of one hook call of one check.\n# TYPE signet_check_latency_seconds histogram"
        );
        for ((check, stage), h) in &m.check_latency {
            hist_body(
                &mut out,
                "signet_check_latency_seconds",
                &format!("check=\"{check}\",stage=\"{stage}\","),
                h,
            );
        }
        out
    }
}

fn hist(out: &mut String, name: &str, help: &str, labels: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    hist_body(out, name, labels, h);
}

fn hist_body(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (i, b) in BUCKETS_S.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}le=\"{b}\"}} {}",
            h.counts.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count);
    let trimmed = labels.trim_end_matches(',');
    let _ = writeln!(
        out,
        "{name}_sum{{{trimmed}}} {}\n{name}_count{{{trimmed}}} {}",
        h.sum, h.count
    );
}
