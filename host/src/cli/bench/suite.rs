//! The gate-overhead scenarios. Every load scenario runs `rounds` pairs of
//! rounds, direct-to-mock and through-gate, alternating which goes first, and
//! merges each side's rounds: added latency is the gate's quantile minus the
//! direct quantile, so the mock's and the client's own costs (and slow drift
//! of a noisy machine) cancel. Gate CPU comes from `/proc/PID/stat` around
//! the gate rounds; memory from `/proc/PID/status`.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;

use super::gate::{self, proc_stats};
use super::load::{self, Api, Done, Histogram, Limit, Target, Workload};
use super::mock::{self, OffendTimes, StreamShape};
use super::report::{Progress, Quantiles, Report, Scenario, Side};
use super::{LoadArgs, SuiteArgs};

const PROSE: &str = "Hi team, quick update on the quarterly numbers: revenue is up 4% over last quarter, \
churn is flat, and the new onboarding flow shipped on Tuesday. Could you summarise the attached notes for the \
board, keep it under two paragraphs, and flag anything that needs a decision before Friday? Thanks!";

const ALL: [&str; 10] = [
    "unary-c1",
    "stream-c1",
    "floor",
    "unary-c32",
    "stream-c32",
    "unary-open",
    "chunk-cost",
    "chunk-cost-anthropic",
    "abort",
    "streams",
];

/// The two ends of a run.
struct Ends {
    direct: Target,
    gate: Target,
    pid: Option<u32>,
    offend_times: Option<OffendTimes>,
    /// The direct end's URL (where the floor's forwarder sends).
    direct_url: String,
    /// The gate's CPU when pinned (where the floor's forwarder runs).
    gate_cpu: Option<usize>,
}

fn unary() -> Workload {
    Workload {
        api: Api::OpenAi,
        body: Bytes::from(
            serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": PROSE}]})
                .to_string(),
        ),
        offend_at: None,
    }
}

/// A stream of `chunks` text deltas of `size` bytes in `api`'s events. On
/// Anthropic, `max_tokens` (which the Messages API requires) is what
/// `scope_drift` approves, so it covers the whole answer: at 4 characters a
/// token a smaller one would have the stream aborted as out of scope part-way.
fn streaming(
    api: Api,
    chunks: usize,
    size: usize,
    pace_us: u64,
    offend_at: Option<usize>,
) -> Workload {
    let mut v = serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": PROSE}],
        "stream": true, "bench_chunks": chunks, "bench_size": size, "bench_pace_us": pace_us});
    if let Some(o) = v.as_object_mut() {
        if let Some(k) = offend_at {
            o.insert("bench_offend_at".into(), k.into());
        }
        if api == Api::Anthropic {
            o.insert(
                "max_tokens".into(),
                (chunks * size).div_ceil(2).max(1024).into(),
            );
        }
    }
    Workload {
        api,
        body: Bytes::from(v.to_string()),
        offend_at,
    }
}

/// Pin this process's load side to a CPU other than the gate's (unless
/// `--no-pin`); returns the CPU pinned to, if any.
fn pin_load_side(s: &SuiteArgs) -> anyhow::Result<Option<usize>> {
    if s.no_pin {
        return Ok(None);
    }
    gate::pin_load_side(s.gate_cpu)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `signet bench` / `signet bench gate`.
pub fn run_gate(s: SuiteArgs) -> anyhow::Result<u8> {
    let load_cpu = pin_load_side(&s)?;
    let gate_cpu = load_cpu.map(|_| s.gate_cpu);
    let rt = runtime()?;
    let report = rt.block_on(async {
        let shape = StreamShape {
            chunks: s.chunks,
            size: s.chunk_size,
            pace_us: s.pace_us,
        };
        let mock = mock::start(0, shape).await?;
        let g = gate::spawn(&gate::bench_config(&s.fsync, !s.no_injection)?, &mock.url, gate_cpu)?;
        let ends = Ends {
            direct: Target::parse(&mock.url)?,
            gate: Target::parse(&g.url)?,
            pid: Some(g.pid),
            offend_times: Some(mock.offend_times.clone()),
            direct_url: mock.url.clone(),
            gate_cpu,
        };
        let mut setup = vec![
            format!(
                "gate: signet serve, the `signet init` pipeline (prompt injection {}; rate limit raised to 1e9), audit on with fsync = {:?}",
                if s.no_injection { "OFF" } else { "on" },
                s.fsync
            ),
            "upstream: in-process mock (immediate answers); client: hyper HTTP/1, keep-alive".to_string(),
        ];
        setup.push(match (gate_cpu, load_cpu) {
            (Some(g), Some(l)) => format!("CPU: gate pinned to CPU {g}; mock + load generator pinned to CPU {l}"),
            _ => "CPU: not pinned".to_string(),
        });
        let r = suite(&s, &ends, "signet".into(), setup).await;
        drop(g);
        r
    })?;
    emit(&s, &report)
}

/// `signet bench load --target URL --direct URL`.
pub fn run_load(l: LoadArgs) -> anyhow::Result<u8> {
    let load_cpu = pin_load_side(&l.suite)?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let ends = Ends {
            direct: Target::parse(&l.direct)?,
            gate: Target::parse(&l.target)?,
            pid: l.pid,
            offend_times: None,
            direct_url: l.direct.clone(),
            gate_cpu: load_cpu.map(|_| l.suite.gate_cpu),
        };
        let setup = vec![
            format!(
                "gate: {} at {} (pid {})",
                l.label,
                l.target,
                l.pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
            format!("upstream: {}; client: hyper HTTP/1, keep-alive", l.direct),
            match load_cpu {
                Some(c) => format!("CPU: load generator pinned to CPU {c}"),
                None => "CPU: load generator not pinned".into(),
            },
        ];
        suite(&l.suite, &ends, l.label.clone(), setup).await
    })?;
    emit(&l.suite, &report)
}

fn emit(s: &SuiteArgs, r: &Report) -> anyhow::Result<u8> {
    if s.json {
        println!("{}", serde_json::to_string_pretty(&r.json())?);
    } else {
        r.print();
    }
    Ok(0)
}

fn selected(s: &SuiteArgs) -> anyhow::Result<Vec<&'static str>> {
    if s.scenarios.iter().any(|x| x == "all") {
        return Ok(ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in &s.scenarios {
        match ALL.iter().find(|a| **a == name.as_str()) {
            Some(a) => out.push(*a),
            None => bail!("unknown scenario {name:?}; choose from {}", ALL.join(", ")),
        }
    }
    Ok(out)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// How one round is driven.
#[derive(Clone, Copy)]
enum Drive {
    Closed(usize),
    Open(f64),
}

async fn one_round(
    t: &Target,
    w: &Workload,
    d: Drive,
    limit: Limit,
    done: &Done,
) -> anyhow::Result<load::Round> {
    match d {
        Drive::Closed(c) => load::closed(t, w, c, limit, done, 0).await,
        Drive::Open(r) => load::open(t, w, r, 4096, limit, done).await,
    }
}

/// Alternating direct/gate round pairs.
async fn pair(
    s: &SuiteArgs,
    e: &Ends,
    name: &str,
    w: &Workload,
    d: Drive,
) -> anyhow::Result<Scenario> {
    let limit = Limit {
        duration: Duration::from_secs_f64(s.duration),
        requests: s.requests,
    };
    let done: Done = Arc::default();
    let load = match d {
        Drive::Closed(c) => format!("closed c={c}"),
        Drive::Open(r) => format!("open {r:.0}/s"),
    };
    let _bar = Progress::start(
        format!("{name} ({load})"),
        limit.duration * (2 * s.rounds.max(1)) as u32,
        done.clone(),
    );
    let (mut direct, mut gate) = (Side::default(), Side::default());
    let mut cpu = 0.0;
    for r in 0..s.rounds.max(1) {
        for gate_side in if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            if gate_side {
                let before = e.pid.map(proc_stats).transpose()?;
                let round = one_round(&e.gate, w, d, limit, &done).await?;
                if let (Some(b), Some(pid)) = (before, e.pid) {
                    cpu += proc_stats(pid)?.cpu_s - b.cpu_s;
                }
                gate.elapsed += round.elapsed;
                gate.round.absorb(round);
            } else {
                let round = one_round(&e.direct, w, d, limit, &done).await?;
                direct.elapsed += round.elapsed;
                direct.round.absorb(round);
            }
        }
    }
    let cpu_us_per_req = e
        .pid
        .filter(|_| gate.round.ok > 0)
        .map(|_| cpu * 1e6 / gate.round.ok as f64);
    Ok(Scenario {
        name: name.into(),
        load,
        direct,
        gate,
        cpu_us_per_req,
    })
}

async fn warm_up(e: &Ends, s: &SuiteArgs) -> anyhow::Result<()> {
    let limit = Limit {
        duration: Duration::from_millis(700),
        requests: 2000,
    };
    let done: Done = Arc::default();
    for w in [
        unary(),
        streaming(Api::OpenAi, s.chunks, s.chunk_size, s.pace_us, None),
    ] {
        for t in [&e.direct, &e.gate] {
            let r = load::closed(t, &w, 4, limit, &done, 0).await?;
            if r.ok == 0 {
                bail!(
                    "warm-up: no request succeeded against {t:?}: {}",
                    r.first_error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

async fn suite(
    s: &SuiteArgs,
    e: &Ends,
    label: String,
    setup: Vec<String>,
) -> anyhow::Result<Report> {
    let names = selected(s)?;
    let mut rep = Report {
        label,
        setup,
        ..Report::default()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(pid) = e.pid {
        rep.idle_rss_mib = Some(mib(proc_stats(pid)?.rss_kib));
    }
    warm_up(e, s).await.context("warming up")?;
    let stream = streaming(Api::OpenAi, s.chunks, s.chunk_size, s.pace_us, None);
    let c = s.concurrency;
    for name in names {
        match name {
            "unary-c1" => rep
                .scenarios
                .push(pair(s, e, name, &unary(), Drive::Closed(1)).await?),
            "stream-c1" => rep
                .scenarios
                .push(pair(s, e, name, &stream, Drive::Closed(1)).await?),
            "floor" => {
                rep.setup.push(FLOOR_NOTE.into());
                floor(s, e, &stream, &mut rep.scenarios).await?;
            }
            "unary-c32" => rep
                .scenarios
                .push(pair(s, e, &format!("unary-c{c}"), &unary(), Drive::Closed(c)).await?),
            "stream-c32" => rep
                .scenarios
                .push(pair(s, e, &format!("stream-c{c}"), &stream, Drive::Closed(c)).await?),
            "unary-open" => rep
                .scenarios
                .push(pair(s, e, name, &unary(), Drive::Open(s.rate)).await?),
            "chunk-cost" => {
                rep.chunk_cost = Some(chunk_cost(s, e, Api::OpenAi, &mut rep.scenarios).await?)
            }
            "chunk-cost-anthropic" => {
                rep.chunk_cost_anthropic =
                    Some(chunk_cost(s, e, Api::Anthropic, &mut rep.scenarios).await?)
            }
            "abort" => rep.abort = Some(abort(e).await?),
            "streams" => rep.streams_rss = Some(open_streams(s, e).await?),
            _ => {}
        }
    }
    if let Some(pid) = e.pid {
        rep.peak_rss_mib = Some(mib(proc_stats(pid)?.hwm_kib));
    }
    Ok(rep)
}

const FLOOR_NOTE: &str = "floor-*: the c=1 rounds and unary at high concurrency through `signet bench proxy` instead of the gate: the same listener, router and upstream client on the gate's CPU, no checks, no audit. Its added latency is what the extra hop costs on this machine before any check runs";

/// The floor: the c=1 unary and streamed rounds, and unary at the high
/// concurrency, through a bare forwarder (`signet bench proxy`, started on
/// the gate's CPU) instead of the gate.
async fn floor(
    s: &SuiteArgs,
    e: &Ends,
    stream: &Workload,
    out: &mut Vec<Scenario>,
) -> anyhow::Result<()> {
    let proxy =
        gate::spawn_forwarder(&e.direct_url, e.gate_cpu).context("starting signet bench proxy")?;
    let ends = Ends {
        direct: Target::parse(&e.direct_url)?,
        gate: Target::parse(&proxy.url)?,
        pid: Some(proxy.pid),
        offend_times: None,
        direct_url: e.direct_url.clone(),
        gate_cpu: e.gate_cpu,
    };
    warm_up(&ends, s).await.context("warming up the floor")?;
    out.push(pair(s, &ends, "floor-unary-c1", &unary(), Drive::Closed(1)).await?);
    out.push(pair(s, &ends, "floor-stream-c1", stream, Drive::Closed(1)).await?);
    let c = s.concurrency;
    out.push(
        pair(
            s,
            &ends,
            &format!("floor-unary-c{c}"),
            &unary(),
            Drive::Closed(c),
        )
        .await?,
    );
    Ok(())
}

/// Per-chunk cost: streams of 10 and of 210 chunks; the difference over 200 chunks.
async fn chunk_cost(
    s: &SuiteArgs,
    e: &Ends,
    api: Api,
    out: &mut Vec<Scenario>,
) -> anyhow::Result<(Option<f64>, f64, usize)> {
    let (lo, hi) = (10usize, 210usize);
    let suffix = match api {
        Api::OpenAi => "",
        Api::Anthropic => "-anthropic",
    };
    let w = |n| streaming(api, n, s.chunk_size, 0, None);
    let a = pair(
        s,
        e,
        &format!("stream-{lo}ch{suffix}"),
        &w(lo),
        Drive::Closed(1),
    )
    .await?;
    let b = pair(
        s,
        e,
        &format!("stream-{hi}ch{suffix}"),
        &w(hi),
        Drive::Closed(1),
    )
    .await?;
    let per = (hi - lo) as f64;
    let cpu = match (a.cpu_us_per_req, b.cpu_us_per_req) {
        (Some(x), Some(y)) => Some((y - x) / per),
        _ => None,
    };
    let lat = (b.added().p50 - a.added().p50) * 1000.0 / per;
    out.push(a);
    out.push(b);
    Ok((cpu, lat, s.chunk_size))
}

/// Offending streams: 20 chunks 2 ms apart, the marker in chunk 10.
async fn abort(e: &Ends) -> anyhow::Result<(u64, u64, Option<Quantiles>, usize)> {
    let n = 40u64;
    let w = streaming(Api::OpenAi, 20, 50, 2000, Some(10));
    let done: Done = Arc::default();
    let _bar = Progress::start(
        "abort (offending chunk)".into(),
        Duration::from_millis(45 * n),
        done.clone(),
    );
    let limit = Limit {
        duration: Duration::from_secs(60),
        requests: n,
    };
    let r = load::closed(&e.gate, &w, 1, limit, &done, 1_000_000).await?;
    let mut hist = Histogram::default();
    let (mut aborted, mut after) = (0, 0);
    let times = e
        .offend_times
        .as_ref()
        .and_then(|t| t.lock().ok().map(|m| m.clone()));
    for (id, seen) in &r.seen {
        after = after.max(seen.bytes_after_offence);
        if let Some(at) = seen.abort_at {
            aborted += 1;
            if let Some(sent) = times.as_ref().and_then(|m| m.get(id)) {
                hist.record(at.saturating_duration_since(*sent));
            }
        }
    }
    let q = (hist.count() > 0).then(|| Quantiles::of(&hist));
    Ok((n, aborted, q, after))
}

/// Peak gate RSS while `open_streams` slow streams are open at once.
async fn open_streams(s: &SuiteArgs, e: &Ends) -> anyhow::Result<(usize, f64, u64)> {
    let n = s.open_streams;
    let w = streaming(Api::OpenAi, 100, s.chunk_size, 20_000, None);
    let done: Done = Arc::default();
    let _bar = Progress::start(
        format!("streams ({n} open)"),
        Duration::from_secs(3),
        done.clone(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = e.pid.map(|pid| {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(st) = proc_stats(pid) {
                    peak.fetch_max(st.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    let r = load::many_streams(&e.gate, &w, n, &done).await?;
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = sampler {
        let _ = t.await;
    }
    Ok((n, mib(peak.load(Ordering::Relaxed)), r.errors))
}
