//! `signet bench`: benchmarks that measure, never assert (speed targets live
//! here and in the README, not in timed tests).
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the clap types and dispatch |
//! | `suite.rs` | the gate-overhead scenarios: alternating direct/through-gate rounds, abort timing, memory |
//! | `load.rs` | the HTTP load generator: lean hyper client, closed and open loop, latency histogram |
//! | `mock.rs` | the in-process mock upstream (unary, SSE with chunk count/size/pacing, an offending chunk) |
//! | `gate.rs` | the gate child process (and the floor's bare forwarder): bench config, CPU pinning, RSS/CPU from /proc |
//! | `report.rs` | the table, `--json`, and the progress bar |
//! | `injection.rs` | `signet bench injection`: the prompt-injection engine and decode bombs |
use std::time::Duration;

mod gate;
mod injection;
mod load;
mod mock;
mod report;
mod suite;

/// `signet bench [gate|load|mock|injection]`; with no subcommand, the gate suite.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: Option<BenchCmd>,
    #[command(flatten)]
    suite: SuiteArgs,
}

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// The gate's added latency, throughput, CPU and memory: a mock upstream in
    /// this process, `signet serve` with the `signet init` pipeline (audit on,
    /// fsync = batch) pinned to one CPU, and a load generator on the other,
    /// alternating direct-to-mock and through-gate rounds. The default.
    Gate(SuiteArgs),
    /// The same scenarios against an already running gate (any gate, e.g. the
    /// reference implementation) and the mock it forwards to.
    Load(LoadArgs),
    /// Run only the mock upstream (for gates started by hand).
    Mock(MockArgs),
    /// A bare forwarder to --upstream on the gate's own HTTP stacks (listener,
    /// router, upstream client) with no checks and no audit: the floor under
    /// the gate's added latency. The `floor` scenario starts one on the gate's
    /// CPU. Not a gate: it forwards everything as it came.
    Proxy(ProxyArgs),
    /// Prompt-injection engine: MB/s on benign text, worst-case decode bombs,
    /// and the p99 of ordinary requests through a gate with and without decode
    /// bombs in flight.
    Injection(injection::InjectionArgs),
}

/// Scenario selection and load shape.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Scenarios, comma-separated: unary-c1, stream-c1, floor (the c=1 rounds and
    /// unary-c32 through a bare forwarder with no checks, on the gate's CPU), unary-c32,
    /// stream-c32, unary-open, chunk-cost, chunk-cost-anthropic (the same on
    /// /v1/messages), abort, streams (1,000 open streams, memory), or `all`.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Concurrency of the high-concurrency closed-loop scenarios.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open-loop request rate (requests/s).
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Wall-clock bound of each round, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,
    /// Request bound of each round.
    #[arg(long, default_value_t = 200_000)]
    pub requests: u64,
    /// Direct/through-gate round pairs per scenario (alternating order so drift cancels).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 20)]
    pub chunks: usize,
    /// Content bytes per chunk.
    #[arg(long, default_value_t = 50)]
    pub chunk_size: usize,
    /// Pause between chunks, microseconds (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub pace_us: u64,
    /// Streams held open at once in the `streams` memory scenario.
    #[arg(long, default_value_t = 1000)]
    pub open_streams: usize,
    /// CPU for the gate; the mock and load generator take another one.
    #[arg(long, default_value_t = 0)]
    pub gate_cpu: usize,
    /// The gate's audit fsync policy (batch = the target setup; never shows the gate's compute cost alone).
    #[arg(long, default_value = "batch", value_parser = ["always", "batch", "never"])]
    pub fsync: String,
    /// Disable the prompt_injection check (to see its share of the cost).
    #[arg(long)]
    pub no_injection: bool,
    /// Do not pin the gate and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `signet bench load`: targets given by URL.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The gate under test, e.g. http://127.0.0.1:8443.
    #[arg(long)]
    pub target: String,
    /// The upstream the gate forwards to (the direct rounds go here), e.g. a `signet bench mock`.
    #[arg(long)]
    pub direct: String,
    /// The gate's process id, for its CPU and RSS (optional).
    #[arg(long)]
    pub pid: Option<u32>,
    /// A label for the report.
    #[arg(long, default_value = "gate")]
    pub label: String,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

/// `signet bench proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Where every request goes, e.g. a `signet bench mock`.
    #[arg(long)]
    pub upstream: String,
    /// Port on 127.0.0.1 (0 = any free port; the address is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// `signet bench mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// Port on 127.0.0.1 (0 = any free port; the address is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Default content chunks per streamed answer.
    #[arg(long, default_value_t = 20)]
    pub chunks: usize,
    /// Default content bytes per chunk.
    #[arg(long, default_value_t = 50)]
    pub chunk_size: usize,
    /// Default pause between chunks, microseconds.
    #[arg(long, default_value_t = 0)]
    pub pace_us: u64,
    /// Pin the mock to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
}

pub(super) fn run(a: BenchArgs) -> anyhow::Result<u8> {
    match a.cmd {
        None => suite::run_gate(a.suite),
        Some(BenchCmd::Gate(s)) => suite::run_gate(s),
        Some(BenchCmd::Load(l)) => suite::run_load(l),
        Some(BenchCmd::Mock(m)) => run_mock(m),
        Some(BenchCmd::Proxy(p)) => run_proxy(p),
        Some(BenchCmd::Injection(i)) => injection::run(i),
    }
}

/// The same runtime as `signet serve` (multi-threaded, one worker per CPU it
/// may run on), so the floor is measured on the gate's scheduler too.
fn run_proxy(p: ProxyArgs) -> anyhow::Result<u8> {
    let up =
        crate::upstream::Upstream::new(&p.upstream, "bench proxy", None, Duration::from_secs(30))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = crate::server::bind_nodelay("127.0.0.1", p.port).await?;
        println!(
            "bare forwarder (no checks, no audit) to {} listening on http://{}",
            p.upstream,
            listener.local_addr()?
        );
        crate::server::bare::serve(up, listener, std::future::pending()).await;
        Ok(0)
    })
}

fn run_mock(m: MockArgs) -> anyhow::Result<u8> {
    if let Some(c) = m.cpu {
        gate::pin_current_thread(c)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shape = mock::StreamShape {
            chunks: m.chunks,
            size: m.chunk_size,
            pace_us: m.pace_us,
        };
        let mock = mock::start(m.port, shape).await?;
        println!("bench mock upstream listening on {}", mock.url);
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    })
}
