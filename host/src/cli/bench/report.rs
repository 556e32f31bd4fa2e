//! What `signet bench gate|load` prints: a table (or `--json`), and a progress
//! bar on stderr while rounds run (only when stderr is a terminal).
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::load::{Done, Histogram, Round};

/// Latency quantiles, milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantiles {
    /// p50.
    pub p50: f64,
    /// p90.
    pub p90: f64,
    /// p99.
    pub p99: f64,
    /// p99.9.
    pub p999: f64,
}

impl Quantiles {
    /// From a histogram.
    pub fn of(h: &Histogram) -> Self {
        Self {
            p50: h.quantile_ms(0.5),
            p90: h.quantile_ms(0.9),
            p99: h.quantile_ms(0.99),
            p999: h.quantile_ms(0.999),
        }
    }

    /// `self - o`, quantile by quantile.
    pub fn minus(&self, o: &Quantiles) -> Self {
        Self {
            p50: self.p50 - o.p50,
            p90: self.p90 - o.p90,
            p99: self.p99 - o.p99,
            p999: self.p999 - o.p999,
        }
    }

    fn json(&self) -> Value {
        json!({"p50_ms": self.p50, "p90_ms": self.p90, "p99_ms": self.p99, "p99_9_ms": self.p999})
    }
}

/// One side (direct or through the gate) of a scenario, all rounds merged.
#[derive(Debug, Default)]
pub struct Side {
    /// Merged rounds.
    pub round: Round,
    /// Total wall-clock time of its rounds.
    pub elapsed: Duration,
}

impl Side {
    /// Requests/s over all its rounds.
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.round.ok as f64 / s
        } else {
            0.0
        }
    }

    fn json(&self) -> Value {
        json!({
            "requests": self.round.ok, "errors": self.round.errors, "first_error": self.round.first_error,
            "response_bytes": self.round.bytes,
            "skipped_open_loop": self.round.skipped, "requests_per_s": self.rps(),
            "latency": Quantiles::of(&self.round.hist).json(), "mean_ms": self.round.hist.mean_ms(),
        })
    }
}

/// One load scenario.
#[derive(Debug)]
pub struct Scenario {
    /// e.g. `unary-c1`.
    pub name: String,
    /// e.g. `closed c=1` / `open 2000/s`.
    pub load: String,
    /// Direct to the mock.
    pub direct: Side,
    /// Through the gate.
    pub gate: Side,
    /// Gate CPU per request through it, µs (when its pid is known).
    pub cpu_us_per_req: Option<f64>,
}

impl Scenario {
    /// Gate quantiles minus direct quantiles.
    pub fn added(&self) -> Quantiles {
        Quantiles::of(&self.gate.round.hist).minus(&Quantiles::of(&self.direct.round.hist))
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Gate label.
    pub label: String,
    /// How the run was set up (one line each).
    pub setup: Vec<String>,
    /// Load scenarios.
    pub scenarios: Vec<Scenario>,
    /// Gate RSS before any load, MiB.
    pub idle_rss_mib: Option<f64>,
    /// Gate peak RSS over the whole run (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Gate peak RSS while N streams were open, MiB, with N and errors.
    pub streams_rss: Option<(usize, f64, u64)>,
    /// Per-chunk cost: (gate CPU µs/chunk, added latency µs/chunk at p50, chunk bytes).
    pub chunk_cost: Option<(Option<f64>, f64, usize)>,
    /// The same for Anthropic Messages streams (`content_block_delta` events).
    pub chunk_cost_anthropic: Option<(Option<f64>, f64, usize)>,
    /// Abort: (streams, aborted, offending chunk → abort event quantiles, max bytes after).
    pub abort: Option<(u64, u64, Option<Quantiles>, usize)>,
}

fn per_chunk_json((cpu, lat, size): (Option<f64>, f64, usize)) -> serde_json::Value {
    json!({"chunk_bytes": size, "gate_cpu_us": cpu, "added_latency_us_p50": lat})
}

fn f(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

impl Report {
    /// The JSON form.
    pub fn json(&self) -> Value {
        json!({
            "gate": self.label,
            "setup": self.setup,
            "scenarios": self.scenarios.iter().map(|s| json!({
                "name": s.name, "load": s.load,
                "direct": s.direct.json(), "gate": s.gate.json(),
                "added": s.added().json(),
                "gate_cpu_us_per_request": s.cpu_us_per_req,
            })).collect::<Vec<_>>(),
            "memory": {
                "idle_rss_mib": self.idle_rss_mib, "peak_rss_mib": self.peak_rss_mib,
                "open_streams": self.streams_rss.map(|(n, mib, errors)| json!({"streams": n, "peak_rss_mib": mib, "errors": errors})),
            },
            "per_chunk": self.chunk_cost.map(per_chunk_json),
            "per_chunk_anthropic": self.chunk_cost_anthropic.map(per_chunk_json),
            "abort": self.abort.map(|(n, aborted, q, after)| json!({
                "streams": n, "aborted": aborted,
                "offending_chunk_to_abort_event": q.map(|q| q.json()),
                "max_bytes_delivered_after_offending_chunk": after})),
        })
    }

    /// The table form.
    pub fn print(&self) {
        println!("signet bench: {}", self.label);
        for l in &self.setup {
            println!("  {l}");
        }
        println!();
        // The first column fits the longest scenario name.
        let w = self
            .scenarios
            .iter()
            .map(|s| s.name.len())
            .chain([12])
            .max()
            .unwrap_or(12);
        println!(
            "{:<w$} {:<13} {:>8} {:>8}  {:>32}  {:>9} {:>9} {:>8} {:>6}",
            "scenario",
            "load",
            "direct",
            "gate",
            "added latency ms p50/p90/p99/p99.9",
            "req/s dir",
            "req/s gate",
            "CPU µs/req",
            "errors"
        );
        println!("{:<w$} {:<13} {:>8} {:>8}", "", "", "p50 ms", "p50 ms");
        for s in &self.scenarios {
            let a = s.added();
            let added = format!("{}/{}/{}/{}", f(a.p50), f(a.p90), f(a.p99), f(a.p999));
            println!(
                "{:<w$} {:<13} {:>8} {:>8}  {:>32}  {:>9.0} {:>9.0} {:>8} {:>6}",
                s.name,
                s.load,
                f(s.direct.round.hist.quantile_ms(0.5)),
                f(s.gate.round.hist.quantile_ms(0.5)),
                added,
                s.direct.rps(),
                s.gate.rps(),
                s.cpu_us_per_req
                    .map(|c| format!("{c:.1}"))
                    .unwrap_or_else(|| "-".into()),
                s.direct.round.errors + s.gate.round.errors,
            );
            for e in [&s.direct.round.first_error, &s.gate.round.first_error]
                .into_iter()
                .flatten()
            {
                println!("{:<w$}   first error: {e}", "");
            }
        }
        println!();
        if let Some(m) = self.idle_rss_mib {
            println!("gate RSS idle:              {m:.1} MiB");
        }
        if let Some(m) = self.peak_rss_mib {
            println!("gate RSS peak (whole run):  {m:.1} MiB");
        }
        if let Some((n, mib, errors)) = self.streams_rss {
            println!("gate RSS peak, {n} open streams: {mib:.1} MiB ({errors} errors)");
        }
        for (api, cost) in [
            ("", self.chunk_cost),
            (", Anthropic", self.chunk_cost_anthropic),
        ] {
            if let Some((cpu, lat, size)) = cost {
                println!(
                    "per-chunk inspection ({size}-byte delta{api}): gate CPU {} µs/chunk, added latency {lat:.2} µs/chunk (p50)",
                    cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into())
                );
            }
        }
        if let Some((n, aborted, q, after)) = self.abort {
            let timing = q
                .map(|q| {
                    format!(
                        "offending chunk → abort event p50 {} ms, p99 {} ms",
                        f(q.p50),
                        f(q.p99)
                    )
                })
                .unwrap_or_else(|| "abort timing needs the in-process mock".into());
            println!("abort: {aborted}/{n} streams aborted; {timing}; max bytes delivered after the offending chunk: {after}");
        }
    }
}

/// A progress bar on stderr, redrawn by its own thread every 200 ms.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Start a bar for `label`, expected to take `expected`, counting `done`.
    pub fn start(label: String, expected: Duration, done: Done) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            eprintln!("  {label} ...");
            return Self { stop, thread: None };
        }
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let frac =
                    (t0.elapsed().as_secs_f64() / expected.as_secs_f64().max(0.001)).min(1.0);
                let filled = (frac * 30.0) as usize;
                eprint!(
                    "\r  {label:<22} [{}{}] {:>8} req {:>5.1}s",
                    "#".repeat(filled),
                    "-".repeat(30 - filled.min(30)),
                    done.load(Ordering::Relaxed),
                    t0.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
                std::thread::sleep(Duration::from_millis(200));
            }
            eprint!("\r{}\r", " ".repeat(80));
            let _ = std::io::stderr().flush();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
