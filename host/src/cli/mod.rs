//! The `signet` command line: clap types, and the command functions that wire
//! config, registry, plugins and pipeline together. `anyhow` lives here only.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the clap tree and dispatch |
//! | `assemble.rs` | registry (built-ins + plugins) and pipeline from a config |
//! | `plugins_cmd.rs` | `signet plugins list` / `install` |
//! | `check_config.rs` | `signet check-config` |
//! | `consent.rs` | `signet consent revoke/restore/status`: revocations in the shared state backend |
//! | `dry_run.rs` | `signet dry-run`: one request through the pipeline, no network |
//! | `audit_cmd.rs` | `signet audit verify/show/tail`, `signet receipt verify`, `signet keys generate` |
//! | `init.rs` | `signet init DIR`: scaffold a gate directory (templates in `scaffold/`) |
//! | `doctor.rs` | `signet doctor`: preflight of config, plugins, upstream, and a running gate |
//! | `report.rs` | `signet audit report`: counts, top refused owners, a daily SVG plot |
//! | `bench/` | `signet bench`: benchmarks that measure, never assert (gate overhead, injection engine) |
//! | `revalidate.rs` | the HTTP revalidator behind `continuing_consent` |
//! | `approvals.rs` | `signet approvals list/show/approve/deny`: the admin API from a terminal |
//! | `serve.rs` | `signet serve`: flags/env/file merged, audit + pipeline + upstream wired, the banner |
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod approvals;
mod assemble;
mod audit_cmd;
mod bench;
mod check_config;
mod consent;
mod doctor;
mod dry_run;
mod init;
mod plugins_cmd;
mod report;
mod revalidate;
mod serve;

pub use assemble::{build_pipeline, load_config, load_registry, CollectingSink};

/// signet: an OpenAI- and Anthropic-compatible LLM safety gate.
///
/// Every request runs ADMISSION checks before the model sees it, every response
/// chunk runs INSPECTION before the caller sees it, every proposed tool call
/// runs COMMITMENT before the caller can execute it, and RECORD runs when the
/// request ends. Checks are built in or loaded from plugin libraries in the
/// plugins directory.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gate (OpenAI- and Anthropic-compatible; point SDKs' base URL at it).
    Serve(Box<serve::Args>),
    /// Run only the built-in demo upstream (an echo model for trying the gate and for tests).
    DemoUpstream {
        /// Port on 127.0.0.1 (0 = any free port; the address is printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Verify, show, tail and report on the HMAC-chained audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCmd),
    /// Verify an `X-Signet-Receipt` offline.
    #[command(subcommand)]
    Receipt(audit_cmd::ReceiptCmd),
    /// Generate signing keys (Ed25519 receipt keys).
    #[command(subcommand)]
    Keys(audit_cmd::KeysCmd),
    /// Revoke or restore an owner's consent in the shared (Redis) state backend.
    #[command(subcommand)]
    Consent(consent::ConsentCmd),
    /// Benchmarks (they measure; targets are checked by reading their output, never by timed tests).
    Bench(bench::BenchArgs),
    /// Validate a config file: parse it, load plugins, build every check with its
    /// settings, and print the pipeline in execution order. Exit 1 listing every problem.
    CheckConfig(check_config::Args),
    /// Inspect and install plugin libraries.
    #[command(subcommand)]
    Plugins(plugins_cmd::PluginsCmd),
    /// Run one request (and optionally a response and tool calls) through the
    /// configured pipeline without any network, printing every decision as JSON.
    DryRun(dry_run::Args),
    /// Scaffold a gate directory that `signet serve --dev` runs as it is.
    ///
    /// Writes DIR/signet.toml (the secure default pipeline, every option
    /// commented), DIR/.env.example (the audit secret and upstream key), DIR/.gitignore
    /// (audit logs, .env, built plugins), DIR/plugins/ (with a README on
    /// `signet plugins install`), DIR/client_example.py (the official OpenAI
    /// Python SDK: a normal request, a refusal, a stream) and DIR/README.md.
    /// An existing file is never overwritten: it is kept and reported.
    ///
    /// Then: cd DIR && signet serve --dev, and in another terminal
    /// python client_example.py.
    Init(init::Args),
    /// Preflight: is this gate set up right, and does the running one enforce?
    ///
    /// Checks, each printed as ok / FAIL (with a `fix:` hint) / warn / skip:
    /// signet and plugin API versions; the config parses and every check
    /// builds; every plugin library loads (each failure with its reason); the
    /// audit key; the upstream answers GET /v1/models. With --self URL, against
    /// the running gate: /healthz, /version, /readyz, and that it ENFORCES: a
    /// request with no owner header must be refused with 403 (a 200 means the
    /// gate is open or in shadow mode). With --probe-injection, ~10 classic
    /// prompt-injection payloads must each be refused too.
    ///
    /// Exit 1 on any FAIL, 0 otherwise. Example:
    /// signet doctor --self http://127.0.0.1:8443 --probe-injection
    Doctor(doctor::Args),
    /// Act on escalations held for a human: list, show, approve (mint a
    /// single-use token the caller re-sends in X-Signet-Approval), deny.
    Approvals(approvals::Args),
}

/// Where the config comes from: `--config`, else `SIGNET_CONFIG`, else
/// `./signet.toml` if present, else the built-in secure default.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file (default: ./signet.toml if present, else the built-in secure default pipeline).
    #[arg(long, env = "SIGNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Plugins directory (overrides `[plugins] dir`).
    #[arg(long, env = "SIGNET_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
}

/// Parse the command line and run; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve::run(*a),
        Command::DemoUpstream { port } => demo_upstream(port),
        Command::Audit(c) => audit_cmd::run_audit(c).map(exit_code),
        Command::Receipt(c) => audit_cmd::run_receipt(c).map(exit_code),
        Command::Keys(c) => audit_cmd::run_keys(c).map(exit_code),
        Command::Consent(c) => consent::run(c),
        Command::Bench(c) => bench::run(c),
        Command::CheckConfig(a) => check_config::run(a),
        Command::Plugins(c) => plugins_cmd::run(c),
        Command::DryRun(a) => dry_run::run(a),
        Command::Init(a) => init::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Approvals(a) => approvals::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("signet: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn demo_upstream(port: u16) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!(
            "demo upstream listening on http://{}",
            listener.local_addr()?
        );
        axum::serve(listener, crate::server::demo::router()).await?;
        Ok(0)
    })
}

fn exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}
