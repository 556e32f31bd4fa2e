//! `signet bench injection` measures the
//! prompt-injection engine (benign throughput, worst-case decode bombs) and
//! whether hostile requests delay ordinary ones through a real gate process.
//! As in `signet bench`, the gate is pinned to one CPU and this process (the
//! clients and the demo upstream) to another, so the ratio shows what the
//! bombs do to the gate's own CPU, not how the load generator and the gate
//! happen to share the machine.
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine as _;
use flate2::write::GzEncoder;

use crate::checks::prompt_injection::{InjectionConfig, Scanner};
use crate::upstream::Upstream;

/// `signet bench injection` options.
#[derive(Debug, clap::Args)]
pub struct InjectionArgs {
    /// Ordinary requests without bombs, and as many again with them (split
    /// over the round pairs).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Round pairs (one without bombs, one with), alternating which goes
    /// first so drift of a noisy machine cancels; each side's latencies are
    /// pooled over its rounds.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Ordinary requests in flight at once (closed loop).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Decode-bomb requests kept in flight during each round with bombs.
    #[arg(long, default_value_t = 2)]
    bombs: usize,
    /// CPU for the gate; the clients and the demo upstream take another one.
    #[arg(long, default_value_t = 0)]
    gate_cpu: usize,
    /// Do not pin the gate and this process to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

const PROSE: &str = "Hi team, quick update on the quarterly numbers: revenue is up 4% over last quarter, \
churn is flat, and the new onboarding flow shipped on Tuesday. Could you summarise the attached notes for the \
board, keep it under two paragraphs, and flag anything that needs a decision before Friday? Thanks!";

fn bombs() -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros)?;
    }
    let gzip_b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish()?);
    let mut nested = PROSE.to_string();
    for i in 0..12 {
        nested = if i % 2 == 0 {
            base64::engine::general_purpose::STANDARD.encode(nested.as_bytes())
        } else {
            nested.bytes().map(|b| format!("{b:02x}")).collect()
        };
    }
    let decimal = "1 ".repeat(1 << 20);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut tokens = String::new();
    while tokens.len() < (2 << 20) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokens.push_str(&base64::engine::general_purpose::STANDARD.encode(seed.to_le_bytes()));
        tokens.push(' ');
    }
    Ok(vec![
        ("gzip bomb (64 MiB of zeros, base64)", gzip_b64),
        ("12-deep base64/hex nesting", nested),
        ("decimal code-point flood (2 MiB)", decimal),
        ("random base64 token flood (2 MiB)", tokens),
    ])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or(0.0)
}

/// A gate child running `owner_resolution` + `prompt_injection` against
/// `upstream`, in a scratch directory removed when it stops.
fn start_gate(
    upstream: &str,
    cpu: Option<usize>,
) -> anyhow::Result<(super::gate::Gate, super::gate::Scratch)> {
    let dir = super::gate::Scratch::new("injection")?;
    let config = "[audit]\nfsync = \"batch\"\n\n[[checks]]\nkind = \"owner_resolution\"\n\n[[checks]]\nkind = \"prompt_injection\"\ntimeout_ms = 60000\n";
    std::fs::write(dir.0.join("signet.toml"), config)?;
    let mut cmd = super::gate::this_binary(&[
        "serve",
        "--config",
        "signet.toml",
        "--upstream",
        upstream,
        "--port",
        "0",
        "--audit-log",
        "audit.jsonl",
        "--allow-ephemeral-key",
    ])?;
    cmd.current_dir(&dir.0);
    Ok((super::gate::spawn_on(cmd, cpu)?, dir))
}

async fn one(client: &Upstream, body: &bytes::Bytes) -> Result<(u16, f64), String> {
    let headers = [("x-commit-owner".to_string(), "human:bench".to_string())];
    let t = Instant::now();
    let resp = client
        .send_exact("POST", "/v1/chat/completions", &headers, Some(body.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status;
    resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, t.elapsed().as_secs_f64() * 1000.0))
}

/// `n` ordinary requests at concurrency `c`: their latencies in ms, in
/// completion order (the caller pools rounds and sorts once).
async fn round(client: Arc<Upstream>, n: usize, c: usize, label: &str) -> anyhow::Result<Vec<f64>> {
    let body = bytes::Bytes::from(
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": PROSE}]})
            .to_string(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (client, body, next) = (client.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                match one(&client, &body).await {
                    Ok((200, ms)) => out.push(ms),
                    Ok((s, _)) => return Err(format!("ordinary request answered {s}")),
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await?.map_err(anyhow::Error::msg)?);
    }
    eprintln!("  {label}: {} requests done", all.len());
    Ok(all)
}

/// Clients that each keep one decode-bomb request in flight until stopped.
struct Bombs {
    stop: Arc<std::sync::atomic::AtomicBool>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bombs {
    /// `n` clients, cycling through `inputs`.
    fn start(client: &Arc<Upstream>, inputs: &[(&'static str, String)], n: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..n {
            let text = inputs
                .get(i % inputs.len().max(1))
                .map(|b| b.1.clone())
                .unwrap_or_default();
            let body = bytes::Bytes::from(
                serde_json::json!({"messages": [{"role": "user", "content": text}]}).to_string(),
            );
            let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if one(&client, &body).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        Bombs { stop, sent, tasks }
    }

    /// Stop after the requests in flight finish; how many bomb requests completed.
    async fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub(super) fn run(a: InjectionArgs) -> anyhow::Result<u8> {
    let scanner = Scanner::new(InjectionConfig::from_json(&serde_json::json!({}))?)?;
    eprintln!("signet bench injection: engine");
    let benign = PROSE.repeat((1 << 20) / PROSE.len());
    let t = Instant::now();
    let mut scanned = 0usize;
    while t.elapsed() < Duration::from_secs(2) {
        let r = scanner.scan(&[&benign]);
        if r.findings.iter().any(|_| true) {
            bail!(
                "the benign benchmark text produced a finding: {:?}",
                r.findings.first()
            );
        }
        scanned += benign.len();
    }
    let mbps = scanned as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    let mut bomb_rows = Vec::new();
    let bomb_inputs = bombs()?;
    for (name, text) in &bomb_inputs {
        let t = Instant::now();
        let r = scanner.scan(&[text.as_str()]);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let outcome = format!("{:?}", r.outcome)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches('{')
            .to_string();
        let cap = r
            .budget_hit
            .map(|h| h.key().to_string())
            .unwrap_or_else(|| "-".into());
        bomb_rows.push((name.to_string(), text.len(), ms, outcome, cap));
    }
    let worst = bomb_rows.iter().map(|r| r.2).fold(0.0, f64::max);

    eprintln!("signet bench injection: through a gate process (demo upstream in this process)");
    let load_cpu = if a.no_pin {
        None
    } else {
        super::gate::pin_load_side(a.gate_cpu)?
    };
    let gate_cpu = load_cpu.map(|_| a.gate_cpu);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (base, with, bombs_sent, gate_allowed) = rt.block_on(async {
        let (demo_url, _demo) = crate::server::demo::start(0).await?;
        let (gate, scratch) = start_gate(&demo_url, gate_cpu)?;
        let allowed = super::gate::cpus_allowed(gate.pid);
        let client = Arc::new(Upstream::new(
            &gate.url,
            "gate",
            None,
            Duration::from_secs(120),
        )?);
        round(client.clone(), a.requests / 10, a.concurrency, "warm-up").await?;
        let rounds = a.rounds.max(1);
        let per_round = a.requests.div_ceil(rounds);
        let (mut base, mut with, mut sent) = (Vec::new(), Vec::new(), 0);
        for pair in 0..rounds {
            for bombs_on in [pair % 2 == 1, pair % 2 == 0] {
                if bombs_on {
                    let bombs = Bombs::start(&client, &bomb_inputs, a.bombs);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let label = format!("round {}/{rounds}, decode bombs in flight", pair + 1);
                    with.extend(round(client.clone(), per_round, a.concurrency, &label).await?);
                    sent += bombs.stop().await;
                } else {
                    let label = format!("round {}/{rounds}, no bombs", pair + 1);
                    base.extend(round(client.clone(), per_round, a.concurrency, &label).await?);
                }
            }
        }
        base.sort_by(|a, b| a.total_cmp(b));
        with.sort_by(|a, b| a.total_cmp(b));
        drop(gate);
        drop(scratch);
        Ok::<_, anyhow::Error>((base, with, sent, allowed))
    })?;
    let (p50a, p99a, p50b, p99b) = (
        percentile(&base, 0.5),
        percentile(&base, 0.99),
        percentile(&with, 0.5),
        percentile(&with, 0.99),
    );
    let ratio = if p99a > 0.0 { p99b / p99a } else { 0.0 };
    if a.json {
        let out = serde_json::json!({
            "benign_mb_per_s": mbps,
            "bombs": bomb_rows.iter().map(|r| serde_json::json!({"input": r.0, "bytes": r.1, "ms": r.2, "outcome": r.3, "budget_cap": r.4})).collect::<Vec<_>>(),
            "worst_bomb_ms": worst,
            "ordinary": {"requests": base.len(), "rounds": a.rounds.max(1), "concurrency": a.concurrency,
                "gate_cpu": gate_cpu, "load_cpu": load_cpu, "gate_cpus_allowed": gate_allowed,
                "without_bombs": {"p50_ms": p50a, "p99_ms": p99a},
                "with_bombs": {"p50_ms": p50b, "p99_ms": p99b, "bombs_in_flight": a.bombs, "bomb_requests_completed": bombs_sent},
                "p99_ratio": ratio},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!("prompt-injection engine (this build, one thread)");
    println!("  benign prose throughput: {mbps:.1} MB/s");
    for r in &bomb_rows {
        println!(
            "  {:<40} {:>9} bytes  {:>8.1} ms  outcome {:<14} cap {}",
            r.0, r.1, r.2, r.3, r.4
        );
    }
    println!("  worst case: {worst:.1} ms");
    println!(
        "ordinary requests through the gate ({} requests each side over {} alternating round pairs, concurrency {}; {})",
        base.len(),
        a.rounds.max(1),
        a.concurrency,
        match (gate_cpu, load_cpu) {
            (Some(g), Some(l)) => format!(
                "gate pinned to CPU {g} (its CPUs: {}), clients and demo upstream to CPU {l}",
                gate_allowed.as_deref().unwrap_or("?")
            ),
            _ => "not pinned".to_string(),
        }
    );
    println!("  without bombs:               p50 {p50a:>7.2} ms  p99 {p99a:>7.2} ms");
    println!("  with {} decode bombs in flight: p50 {p50b:>7.2} ms  p99 {p99b:>7.2} ms  ({bombs_sent} bomb requests completed)", a.bombs);
    println!("  p99 ratio: {ratio:.2}x (target: within 2x)");
    Ok(0)
}
